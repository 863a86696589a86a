import NIOSSL
import EmbedStarCore
import Foundation
import NIOHTTP1

/// Sorts an HTTP provider's error answer into Core's categories. Shared by every HTTP provider
/// so the same status means the same thing everywhere.
public enum ProviderErrors {
    /// The error message and code from a JSON error body: OpenAI's `{"error": {"message",
    /// "code", "type"}}`, Ollama's `{"error": "..."}`, or the body's first line.
    public static func message(from body: Data) -> (message: String, code: String?) {
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] {
            if let error = object["error"] as? [String: Any] {
                let message = error["message"] as? String ?? "unknown error"
                let code = (error["code"] as? String) ?? (error["type"] as? String)
                return (message, code)
            }
            if let message = object["error"] as? String { return (message, nil) }
            if let message = object["message"] as? String { return (message, object["code"] as? String) }
        }
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        let firstLine = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return (firstLine.isEmpty ? "no error message" : firstLine, nil)
    }

    /// The error for a non-2xx answer. `provider` names the plugin in messages.
    public static func classify(status: Int, headers: HTTPHeaders, body: Data, provider: String) -> EmbeddingError {
        let (message, code) = message(from: body)
        let lowered = message.lowercased()
        let detail = "\(provider) answered HTTP \(status): \(message)"
        if headers.first(name: "x-should-retry") == "true" {
            return EmbeddingError(.retryable, detail)
        }
        switch status {
        case 429:
            if code == "insufficient_quota" || lowered.contains("exceeded your current quota") || lowered.contains("billing") {
                return EmbeddingError(.fatal, detail + " (the account has no quota left)")
            }
            return EmbeddingError(.rateLimited(retryAfter: retryAfter(headers)), detail)
        case 400 where code == "rate_limit" || code == "rate_limit_exceeded":
            return EmbeddingError(.rateLimited(retryAfter: retryAfter(headers)), detail)
        case 401, 403:
            return EmbeddingError(.fatal, detail + " (check the API key and its permissions)")
        case 404:
            return EmbeddingError(.fatal, detail + " (check the base URL and the model name)")
        case 408, 409, 425, 500...599:
            return EmbeddingError(.retryable, detail)
        case 400, 413, 422:
            let aboutInput = ["token", "length", "too long", "context", "empty", "input"].contains { lowered.contains($0) }
            // A request-shape problem would fail every repo the same way: stop instead.
            return aboutInput ? EmbeddingError(.invalidInput(indices: nil), detail) : EmbeddingError(.fatal, detail)
        default:
            return EmbeddingError(.fatal, detail)
        }
    }

    /// `retry-after-ms`, else `retry-after` as seconds or an HTTP date.
    public static func retryAfter(_ headers: HTTPHeaders, now: Date = Date()) -> Duration? {
        if let text = headers.first(name: "retry-after-ms"), let ms = Double(text.trimmingCharacters(in: .whitespaces)), ms >= 0 {
            return .milliseconds(Int64(ms.rounded(.up)))
        }
        guard let text = headers.first(name: "retry-after")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(text), seconds >= 0 { return .milliseconds(Int64((seconds * 1000).rounded(.up))) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
    }

    /// Rate-limit facts from OpenAI-style (`x-ratelimit-remaining-requests`) and Together-style
    /// (`x-ratelimit-remaining`, `x-tokenlimit-remaining`) headers.
    public static func rateLimitHint(_ headers: HTTPHeaders, provider: String) -> RateLimitHint {
        func int(_ name: String) -> Int? { headers.first(name: name).flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
        func duration(_ name: String) -> Duration? { headers.first(name: name).flatMap { parseDuration($0) } }
        var hint = RateLimitHint(provider: provider)
        hint.requestsLimit = int("x-ratelimit-limit-requests") ?? int("x-ratelimit-limit")
        hint.requestsRemaining = int("x-ratelimit-remaining-requests") ?? int("x-ratelimit-remaining")
        hint.requestsReset = duration("x-ratelimit-reset-requests") ?? duration("x-ratelimit-reset")
        hint.tokensLimit = int("x-ratelimit-limit-tokens") ?? int("x-tokenlimit-limit")
        hint.tokensRemaining = int("x-ratelimit-remaining-tokens") ?? int("x-tokenlimit-remaining")
        hint.tokensReset = duration("x-ratelimit-reset-tokens")
        return hint
    }

    /// The longest wait a rate-limit header may ask for (a daily quota); a bigger number is a
    /// misreading, and a day later the provider is simply asked again.
    public static let longestRateLimitWait: Duration = .seconds(86_400)

    /// Durations as OpenAI writes them (`1s`, `6m0s`, `20ms`, `1h2m3.5s`) or plain seconds. A
    /// plain number past a billion is a Unix timestamp (some providers send the reset time):
    /// the time until it. Capped at ``longestRateLimitWait``.
    public static func parseDuration(_ text: String, now: Date = Date()) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let number = Double(text), number >= 0, number.isFinite {
            let seconds = number >= 1_000_000_000 ? max(0, number - now.timeIntervalSince1970) : number
            return min(.milliseconds(Int64(seconds * 1000)), longestRateLimitWait)
        }
        var total = 0.0
        var number = ""
        var index = text.startIndex
        var sawUnit = false
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            var unit = String(character)
            let next = text.index(after: index)
            if character == "m", next < text.endIndex, text[next] == "s" {
                unit = "ms"
                index = text.index(after: next)
            } else {
                index = next
            }
            guard let value = Double(number) else { return nil }
            switch unit {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            case "ms": total += value / 1000
            default: return nil
            }
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty else { return nil }
        return min(.milliseconds(Int64((total * 1000).rounded())), longestRateLimitWait)
    }

    /// A transport failure (refused, reset, timed out) as a retryable error; cancellation passes.
    public static func transport(_ error: any Error, provider: String, url: String) -> any Error {
        if error is CancellationError { return error }
        let text = String(describing: error).lowercased()
        if error is NIOSSLError || error is BoringSSLError || text.contains("certificate") || text.contains("niossl") || text.contains("boringssl") {
            // A certificate that is not trusted stays untrusted: not retried, and says what to set.
            let hint = text.contains("certificate_verify_failed") || text.contains("unable to get local issuer") || text.contains("self signed")
                ? "the server's certificate is not signed by a trusted CA (set tls_ca_file to the CA's PEM file); " : ""
            return EmbeddingError(.fatal, "TLS with \(provider) at \(redact(url)) failed: \(hint)\(describe(error))")
        }
        return EmbeddingError(.retryable, "\(provider) at \(redact(url)) could not be reached: \(describe(error))")
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.count > 200 ? String(text.prefix(200)) + "..." : text
    }

    /// The URL without credentials or query, for messages.
    public static func redact(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.user = nil
        components.password = nil
        components.query = nil
        return components.string ?? url
    }
}
