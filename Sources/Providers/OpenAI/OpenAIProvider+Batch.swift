import EmbedStarCore
import EmbedStarHTTPProvider
import Foundation
import NIOHTTP1

/// OpenAI's Batch API (`backfill --batch-api`): the texts as a file of JSON lines (`POST /files`,
/// purpose `batch`), a batch over it (`POST /batches`, endpoint `/v1/embeddings`, 24 hours),
/// its state (`GET /batches/{id}`), and its output and error files (`GET /files/{id}/content`),
/// one line per request, matched by `custom_id`.
extension OpenAIProvider: BatchEmbeddingProvider {
    public func submitBatch(_ requests: [BatchRequest], tag: String) async throws -> String {
        // Its output file is read whole (at most 256 MB an answer): refused before it is paid for.
        let dimensions = configuration.dimensions ?? Configuration.knownDimensions[configuration.model] ?? 1_536
        let perLine = 400 + dimensions * (configuration.encodingFormat == .base64 ? 6 : 24)
        if requests.count * perLine > 240 << 20 {
            throw EmbeddingError(.fatal, """
                a batch of \(requests.count) texts at \(dimensions) dimensions (\(configuration.encodingFormat.rawValue)) would answer about \
                \(requests.count * perLine >> 20) MB, more than embed-star reads (256 MB): use --batch-lines \((240 << 20) / perLine) or fewer
                """)
        }
        var lines = Data()
        for request in requests {
            let body = try OpenAIWire.encodeRequest(model: configuration.model, input: [request.text], encoding: configuration.encodingFormat,
                                                    dimensions: configuration.dimensions, user: configuration.user)
            let line: [String: Any] = [
                "custom_id": request.id, "method": "POST", "url": "/v1/embeddings",
                "body": try JSONSerialization.jsonObject(with: body),
            ]
            lines.append(try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]))
            lines.append(0x0A)
        }
        let boundary = "embed-star-\(UUID().uuidString)"
        var form = Data()
        func text(_ string: String) { form.append(Data(string.utf8)) }
        text("--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n")
        text("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"embed-star-batch.jsonl\"\r\n")
        text("Content-Type: application/jsonl\r\n\r\n")
        form.append(lines)
        text("\r\n--\(boundary)--\r\n")
        var headers = http.baseHeaders
        headers.replaceOrAdd(name: "content-type", value: "multipart/form-data; boundary=\(boundary)")
        let uploaded = try await http.send(HTTPExchange.Request(method: .POST, url: ProviderHTTPClient.join(configuration.baseURL, "files"),
                                                                headers: headers, body: form, timeout: .seconds(max(configuration.timeoutSeconds, 300))))
        let file = try decode(FileObject.self, uploaded.body, what: "the uploaded file")
        let create = try JSONSerialization.data(withJSONObject: [
            "input_file_id": file.id, "endpoint": "/v1/embeddings", "completion_window": "24h",
            "metadata": ["source": "embed-star", "embed_star_job": tag],
        ] as [String: Any])
        let created = try await http.post(ProviderHTTPClient.join(configuration.baseURL, "batches"), json: create)
        return try decode(BatchObject.self, created.body, what: "the batch").id
    }

    /// `GET /batches`, newest first, page after page (100 a page, at most 50 pages): the one
    /// whose metadata names `tag`. The list is the organisation's or project's, other users'
    /// batches included.
    public func batch(taggedWith tag: String) async throws -> String? {
        var after: String?
        for _ in 0..<50 {
            let query = "batches?limit=100" + (after.map { "&after=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" } ?? "")
            let answer = try await http.get(ProviderHTTPClient.join(configuration.baseURL, query))
            let list = try decode(BatchList.self, answer.body, what: "the list of batches")
            if let found = list.data.first(where: { $0.metadata?["embed_star_job"] == tag }) { return found.id }
            guard list.hasMore == true, let last = list.data.last?.id else { return nil }
            after = last
        }
        return nil
    }

    public func batchState(_ id: String) async throws -> BatchState {
        let answer = try await http.get(ProviderHTTPClient.join(configuration.baseURL, "batches/\(id)"))
        let batch = try decode(BatchObject.self, answer.body, what: "the batch")
        switch batch.status {
        case "completed":
            return .completed
        case "failed", "expired", "cancelled":
            let why = batch.errors?.data?.compactMap(\.message).joined(separator: "; ")
            return .ended(batch.status + (why.map { $0.isEmpty ? "" : ": \($0)" } ?? ""))
        default:  // validating, in_progress, finalizing, cancelling
            let counts = batch.requestCounts
            return .running(done: (counts?.completed ?? 0) + (counts?.failed ?? 0), total: counts?.total ?? 0)
        }
    }

    public func batchAnswers(_ id: String) async throws -> [String: Result<[Float], ItemProblem>] {
        let answer = try await http.get(ProviderHTTPClient.join(configuration.baseURL, "batches/\(id)"))
        let batch = try decode(BatchObject.self, answer.body, what: "the batch")
        var answers: [String: Result<[Float], ItemProblem>] = [:]
        for file in [batch.outputFileID, batch.errorFileID].compactMap({ $0 }) {
            let content = try await http.send(HTTPExchange.Request(method: .GET, url: ProviderHTTPClient.join(configuration.baseURL, "files/\(file)/content"),
                                                                   headers: http.baseHeaders, timeout: .seconds(max(configuration.timeoutSeconds, 300))))
            for line in content.body.split(separator: 0x0A) where !line.isEmpty {
                guard let row = OutputLine(Data(line)) else { continue }
                answers[row.customID] = Self.answer(row, provider: "openai")
            }
        }
        return answers
    }

    /// One output line: the vector of a 2xx answer; a failure the repo's attempt counts for (a
    /// 4xx: its input was refused) or a release (a 429, a 5xx, a request the batch's window ran
    /// out on: not the text's fault).
    static func answer(_ row: OutputLine, provider: String) -> Result<[Float], ItemProblem> {
        if let status = row.statusCode, (200..<300).contains(status), let body = row.body {
            do {
                guard let vector = try OpenAIWire.decodeResponse(body, expectedCount: 1, provider: provider).first else {
                    return .failure(ItemProblem(reason: "the batch answered no vector", permanent: false))
                }
                return .success(vector)
            } catch {
                return .failure(ItemProblem(reason: "the batch's answer could not be read: \(error)", permanent: false))
            }
        }
        let status = row.statusCode
        let message = row.errorMessage ?? "no answer"
        let reason = "the batch refused it\(status.map { " (\($0))" } ?? ""): \(message)"
        // Not the text's fault: a rate limit, a server error, a request the window ran out on.
        if status == 429 || (status ?? 0) >= 500 || row.errorCode == "batch_expired" {
            return .failure(ItemProblem(reason: reason, permanent: false, release: true))
        }
        return .failure(ItemProblem(reason: reason, permanent: false))
    }

    private func decode<T: Decodable>(_ type: T.Type, _ body: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch {
            throw EmbeddingError(.retryable, "openai answered \(what) in a shape embed-star cannot read: \(error)")
        }
    }

    struct FileObject: Decodable {
        var id: String
    }

    struct BatchObject: Decodable {
        struct Counts: Decodable {
            var total: Int?
            var completed: Int?
            var failed: Int?
        }

        struct Errors: Decodable {
            struct Item: Decodable { var message: String? }
            var data: [Item]?
        }

        var id: String
        var status: String
        var outputFileID: String?
        var errorFileID: String?
        var requestCounts: Counts?
        var errors: Errors?
        var metadata: [String: String]?

        enum CodingKeys: String, CodingKey {
            case id, status, outputFileID = "output_file_id", errorFileID = "error_file_id", requestCounts = "request_counts", errors, metadata
        }
    }

    struct BatchList: Decodable {
        var data: [BatchObject]
        var hasMore: Bool?

        enum CodingKeys: String, CodingKey { case data, hasMore = "has_more" }
    }

    /// One line of an output or error file; its response body kept as JSON bytes for the
    /// embeddings decoder.
    struct OutputLine {
        var customID: String
        var statusCode: Int?
        var body: Data?
        var errorMessage: String?
        var errorCode: String?

        init?(_ line: Data) {
            guard let row = try? JSONSerialization.jsonObject(with: line) as? [String: Any], let id = row["custom_id"] as? String else { return nil }
            customID = id
            let response = row["response"] as? [String: Any]
            statusCode = response?["status_code"] as? Int
            if let body = response?["body"], !(body is NSNull) {
                self.body = try? JSONSerialization.data(withJSONObject: body)
                errorMessage = ((body as? [String: Any])?["error"] as? [String: Any])?["message"] as? String
            }
            let error = row["error"] as? [String: Any]
            errorMessage = errorMessage ?? error?["message"] as? String
            errorCode = error?["code"] as? String
        }
    }
}
