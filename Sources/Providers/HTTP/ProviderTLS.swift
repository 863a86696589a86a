import EmbedStarConfig
import EmbedStarCore
import Foundation
import NIOSSL

/// The TLS keys every HTTP provider's section takes:
///   `tls_ca_file`  PEM file of CAs trusted for `https://` besides the system's (a private CA);
///   `require_tls`  refuses a plain `http://` URL to any host but this machine's loopback.
public struct ProviderTLS: Sendable {
    public var caFile: String?
    public var requireTLS = false

    enum CodingKeys: String, CodingKey, CaseIterable {
        case caFile = "tls_ca_file", requireTLS = "require_tls"
    }

    /// The keys it reads from a provider's section (its ``PluginConfiguration/extraKeys``).
    public static var keys: [String] { CodingKeys.allCases.map(\.stringValue) }

    public init(caFile: String? = nil, requireTLS: Bool = false) {
        self.caFile = caFile
        self.requireTLS = requireTLS
    }

    /// Reads both keys of the section and checks `url` (the value of `urlKey`) against them.
    public init(from decoder: any Decoder, url: String, urlKey: String) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile).flatMap { $0.isEmpty ? nil : decoder.configurationPath($0) }
        requireTLS = try c.decodeIfPresent(Bool.self, forKey: .requireTLS) ?? false
        let parsed = URLComponents(string: url)
        let host = parsed?.host ?? ""
        if requireTLS, parsed?.scheme?.lowercased() == "http", !Self.isLoopback(host) {
            throw ConfigError.invalid(urlKey, "is plain http:// to \(host) and require_tls is on: use https://, or reach the server on loopback", in: decoder)
        }
        if caFile != nil {
            do { _ = try configuration() } catch { throw ConfigError.invalid(CodingKeys.caFile.rawValue, "\(error)", in: decoder) }
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        return bare == "localhost" || bare.hasSuffix(".localhost") || bare == "::1" || bare.hasPrefix("127.")
    }

    /// The TLS settings for requests: nil leaves the client's (the system's CAs).
    public func configuration() throws -> TLSConfiguration? {
        guard let caFile else { return nil }
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(caFile)
        } catch {
            throw EmbeddingError(.fatal, "the CA file \(caFile) holds no PEM certificate that can be read (\(error))")
        }
        guard !certificates.isEmpty else { throw EmbeddingError(.fatal, "the CA file \(caFile) holds no PEM certificate") }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.additionalTrustRoots = [.certificates(certificates)]
        return tls
    }
}
