import EmbedStarConfig
import EmbedStarCore
import Foundation
import NIOHTTP1

/// What the hosted OpenAI-shaped APIs share in their configuration: an http(s) base URL, and
/// an API key that the vendor's own host requires (compatible local servers may need none).
public enum HostedAPI {
    public static func check(baseURL: String, apiKey: String?, vendorHost: String, keyVariable: String, in decoder: any Decoder) throws {
        guard URL(string: baseURL)?.scheme.map({ ["http", "https"].contains($0) }) == true else {
            throw ConfigError.invalid("base_url", "must be an http or https URL, got '\(baseURL)'", in: decoder)
        }
        if (apiKey ?? "").isEmpty, URL(string: baseURL)?.host == vendorHost {
            throw ConfigError.invalid("api_key", "is required for \(vendorHost) (set \(keyVariable))", in: decoder)
        }
    }

    /// `Authorization: Bearer <key>` when there is a key.
    public static func headers(apiKey: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        if let apiKey, !apiKey.isEmpty { headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        return headers
    }
}
