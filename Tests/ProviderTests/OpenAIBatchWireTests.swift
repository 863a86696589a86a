import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import EmbedStarHTTPTesting
import EmbedStarOpenAI
import Foundation
import NIOHTTP1
import Synchronization
import Testing

/// OpenAI's Batch API as `OpenAIProvider` speaks it, byte for byte against a transport that
/// answers as OpenAI documents: the upload, the batch, its states, the list, the output and
/// error files.
@Suite struct OpenAIBatchWireTests {
    func provider(_ transport: ClosureTransport) throws -> OpenAIProvider {
        let node = try ConfigNode.parse(yaml: "api_key: sk-test\nbase_url: https://example.test/v1\nmodel: text-embedding-3-small\ndimensions: 2",
                                        source: "t.yaml")
        let configuration = try ConfigDecoder().decode(OpenAIProvider.Configuration.self, from: node, path: "providers.openai")
        return OpenAIProvider(configuration: configuration, transport: transport)
    }

    static func json(_ object: Any) -> HTTPExchange.Response {
        HTTPExchange.Response(status: 200, body: try! JSONSerialization.data(withJSONObject: object))
    }

    @Test func submitUploadsJSONLinesAndMakesATaggedBatch() async throws {
        let requests = Mutex<[HTTPExchange.Request]>([])
        let transport = ClosureTransport { request in
            requests.withLock { $0.append(request) }
            if request.url.hasSuffix("/files") { return Self.json(["id": "file-1", "object": "file"]) }
            return Self.json(["id": "batch_1", "object": "batch", "status": "validating"])
        }
        let id = try await provider(transport).submitBatch([BatchRequest(id: "t0", text: "hello"), BatchRequest(id: "t1", text: "wörld")], tag: "job-9")
        #expect(id == "batch_1")
        let sent = requests.withLock { $0 }
        #expect(sent.map(\.url) == ["https://example.test/v1/files", "https://example.test/v1/batches"])
        let upload = try #require(sent.first)
        #expect(upload.headers.first(name: "authorization") == "Bearer sk-test")
        let type = try #require(upload.headers.first(name: "content-type"))
        #expect(type.hasPrefix("multipart/form-data; boundary="))
        let boundary = String(type.split(separator: "=", maxSplits: 1)[1])
        let form = String(decoding: upload.body ?? Data(), as: UTF8.self)
        #expect(form.contains("--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"))
        #expect(form.hasSuffix("\r\n--\(boundary)--\r\n"))
        let file = try #require(form.components(separatedBy: "Content-Type: application/jsonl\r\n\r\n").last?.components(separatedBy: "\r\n--").first)
        let lines = file.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.count == 2)
        #expect(lines[1]["custom_id"] as? String == "t1" && lines[1]["method"] as? String == "POST" && lines[1]["url"] as? String == "/v1/embeddings")
        let body = try #require(lines[1]["body"] as? [String: Any])
        #expect(body["model"] as? String == "text-embedding-3-small" && body["input"] as? [String] == ["wörld"] && body["dimensions"] as? Int == 2)
        let create = try #require(try JSONSerialization.jsonObject(with: sent[1].body ?? Data()) as? [String: Any])
        #expect(create["input_file_id"] as? String == "file-1" && create["endpoint"] as? String == "/v1/embeddings"
                && create["completion_window"] as? String == "24h")
        #expect((create["metadata"] as? [String: String])?["embed_star_job"] == "job-9")
    }

    @Test func statesAndAnswersAsOpenAIWritesThem() async throws {
        let vector = [Float(0.6), 0.8].withUnsafeBytes { Data($0) }.base64EncodedString()
        let output = [
            #"{"id":"batch_req_1","custom_id":"t0","response":{"status_code":200,"request_id":"r1","body":{"object":"list","data":[{"object":"embedding","index":0,"embedding":"\#(vector)"}],"model":"text-embedding-3-small"}},"error":null}"#,
            #"{"id":"batch_req_2","custom_id":"t1","response":{"status_code":200,"request_id":"r2","body":{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0,1.0]}]}},"error":null}"#,
            "not json at all",
        ].joined(separator: "\n")
        let errors = [
            #"{"id":"batch_req_3","custom_id":"t2","response":{"status_code":400,"request_id":"r3","body":{"error":{"message":"Invalid input","type":"invalid_request_error"}}},"error":null}"#,
            #"{"id":"batch_req_4","custom_id":"t3","response":{"status_code":429,"request_id":"r4","body":{"error":{"message":"slow down"}}},"error":null}"#,
            #"{"id":"batch_req_5","custom_id":"t4","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}"#,
        ].joined(separator: "\n")
        let status = Mutex("in_progress")
        let transport = ClosureTransport { request in
            switch request.url {
            case "https://example.test/v1/batches/batch_1":
                return Self.json(["id": "batch_1", "status": status.withLock { $0 }, "output_file_id": "file-out", "error_file_id": "file-err",
                                  "request_counts": ["total": 5, "completed": 2, "failed": 3],
                                  "errors": ["data": [["message": "token_limit_exceeded"]]]])
            case "https://example.test/v1/files/file-out/content": return HTTPExchange.Response(status: 200, body: Data(output.utf8))
            case "https://example.test/v1/files/file-err/content": return HTTPExchange.Response(status: 200, body: Data(errors.utf8))
            default: return HTTPExchange.Response(status: 404, body: Data(#"{"error":{"message":"no"}}"#.utf8))
            }
        }
        let provider = try provider(transport)
        #expect(try await provider.batchState("batch_1") == .running(done: 5, total: 5))
        status.withLock { $0 = "cancelling" }
        #expect(try await provider.batchState("batch_1") == .running(done: 5, total: 5), "cancelling is not over yet")
        status.withLock { $0 = "failed" }
        #expect(try await provider.batchState("batch_1") == .ended("failed: token_limit_exceeded"))
        status.withLock { $0 = "completed" }
        #expect(try await provider.batchState("batch_1") == .completed)
        let answers = try await provider.batchAnswers("batch_1")
        #expect(try answers["t0"]?.get() == [0.6, 0.8], "base64")
        #expect(try answers["t1"]?.get() == [0, 1], "floats")
        guard case .failure(let refused)? = answers["t2"], case .failure(let limited)? = answers["t3"], case .failure(let expired)? = answers["t4"] else {
            Issue.record("\(answers)")
            return
        }
        #expect(refused.reason.contains("Invalid input") && !refused.release, "a 4xx counts an attempt")
        #expect(limited.release, "a 429 line goes back without one")
        #expect(expired.reason.contains("completion window") && expired.release, "a request the window ran out on goes back without an attempt")
        #expect(answers.count == 5, "the unreadable line answers nothing")
    }

    @Test func theTagIsLookedForPageAfterPage() async throws {
        let pages = Mutex<[String]>([])
        let transport = ClosureTransport { request in
            pages.withLock { $0.append(request.url) }
            if request.url.hasSuffix("after=batch_100") {
                return Self.json(["data": [["id": "batch_101", "status": "completed", "metadata": ["embed_star_job": "job-9"]]], "has_more": false])
            }
            let page = (1...100).map { ["id": "batch_\($0)", "status": "completed", "metadata": ["embed_star_job": "other"]] as [String: Any] }
            return Self.json(["data": page, "has_more": true])
        }
        let provider = try provider(transport)
        #expect(try await provider.batch(taggedWith: "job-9") == "batch_101")
        #expect(pages.withLock { $0 } == ["https://example.test/v1/batches?limit=100", "https://example.test/v1/batches?limit=100&after=batch_100"])
    }

    /// Answers larger than what is read (256 MB) are refused before anything is sent or paid.
    @Test func aBatchWhoseAnswersWouldNotFitIsRefusedBeforeItIsSent() async throws {
        let sent = Mutex(0)
        let transport = ClosureTransport { _ in
            sent.withLock { $0 += 1 }
            return Self.json(["id": "x", "status": "validating"])
        }
        let node = try ConfigNode.parse(yaml: "api_key: sk-test\nmodel: text-embedding-3-large\nencoding_format: float", source: "t.yaml")
        let provider = OpenAIProvider(configuration: try ConfigDecoder().decode(OpenAIProvider.Configuration.self, from: node, path: "providers.openai"),
                                      transport: transport)
        let requests = (0..<10_000).map { BatchRequest(id: "t\($0)", text: "x") }
        await #expect(throws: EmbeddingError.self) { try await provider.submitBatch(requests, tag: "big") }
        #expect(sent.withLock { $0 } == 0)
        #expect(try await provider.submitBatch(Array(requests.prefix(1_000)), tag: "small") == "x", "1,000 at 3,072 fit")
    }
}
