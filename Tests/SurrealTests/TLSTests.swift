import EmbedStarConfig
import EmbedStarCore
import EmbedStarTesting
import EmbedStarSurrealStore
import Foundation
import SurrealClient
import Testing

/// TLS to SurrealDB (issue 15, item 2): the dev server serves wss:// and https:// with a
/// certificate made here by a CA made here; trusting that CA works, another CA fails clearly.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"] != nil, "needs the SurrealDB dev server (scripts/test)"))
struct TLSTests {
    /// wss:// by host name (the WebSocket client sends the host as SNI), https:// by address.
    func configuration(_ scheme: String, port: Int, caFile: String?) throws -> SurrealConfiguration {
        var configuration = try DevServer.configuration(scheme, address: "\(scheme == "wss" ? "localhost" : "127.0.0.1"):\(port)")
        configuration.connectTimeout = .seconds(5)
        if let caFile { try configuration.trust(caFile: caFile) }
        return configuration
    }

    /// One round trip, or the error it ended with.
    func roundTrip(_ configuration: SurrealConfiguration) async -> Result<[SurrealValue], SurrealError> {
        let client = SurrealClient(configuration: configuration)
        defer { Task { await client.close() } }
        do {
            return .success(try await client.query("RETURN 40 + 2"))
        } catch let error as SurrealError {
            return .failure(error)
        } catch {
            return .failure(SurrealError(.protocolViolation, "\(error)"))
        }
    }

    @Test func trustedCAWorksAndAnotherCAFailsWithAClearError() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let server = try DevServer.Process(path: "mem://", arguments: ["--tls-cert", certificates.certificate, "--tls-key", certificates.key])
        defer { server.stop() }
        // Up once a trusted https round trip answers.
        let ca = certificates.ca
        try await server.startAndWaitUntilUp { port in
            guard let configuration = try? configuration("https", port: port, caFile: ca) else { return false }
            if case .success = await roundTrip(configuration) { return true }
            return false
        }
        for scheme in ["wss", "https"] {
            let trusted = await roundTrip(try configuration(scheme, port: server.port, caFile: certificates.ca))
            #expect((try? trusted.get())?.last?.int == 42, "\(scheme) with the server's CA: \(trusted)")

            for caFile in [certificates.otherCA, nil] {
                let refused = await roundTrip(try configuration(scheme, port: server.port, caFile: caFile))
                guard case .failure(let error) = refused else {
                    Issue.record("\(scheme) trusting \(caFile ?? "the system's CAs only") must fail")
                    continue
                }
                #expect(error.kind == .tls, "\(scheme): \(error)")
                #expect(!error.isRetryable)
                #expect(error.message.contains("not signed by a trusted CA"), "\(scheme): \(error.message)")
            }
        }
        // Plain to a TLS server: no answer, not a hang.
        let plain = await roundTrip(try configuration("ws", port: server.port, caFile: nil))
        #expect(throws: SurrealError.self) { try plain.get() }
    }

    @Test func aCAFileThatHoldsNoCertificateIsAConfigError() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let junk = folder.appendingPathComponent("ca.pem")
        try "not a certificate\n".write(to: junk, atomically: true, encoding: .utf8)
        var configuration = try SurrealConfiguration(url: "wss://db.example:8000", namespace: "n", database: "d")
        #expect(throws: SurrealError.self) { try configuration.trust(caFile: junk.path) }
        #expect(throws: SurrealError.self) { try configuration.trust(caFile: folder.appendingPathComponent("missing.pem").path) }
        // wss:// to an address cannot work (the address would be the TLS server name): said at once.
        #expect(throws: SurrealError.self) { try SurrealConfiguration(url: "wss://10.0.0.5:8000", namespace: "n", database: "d") }
        #expect(throws: Never.self) { try SurrealConfiguration(url: "https://10.0.0.5:8000", namespace: "n", database: "d") }
    }
}

/// `require_tls`: plain connections only on loopback.
@Suite struct RequireTLSTests {
    func decode(_ yaml: String) throws -> SurrealStore.Configuration {
        try ConfigDecoder().decode(SurrealStore.Configuration.self, from: try ConfigNode.parse(yaml: yaml, source: "plugins.yaml"), path: "stores.surreal")
    }

    @Test func plainToARemoteHostIsRefusedLoopbackAndTLSAreNot() throws {
        do {
            _ = try decode("url: ws://10.1.2.3:8000\nrequire_tls: true\n")
            Issue.record("plain ws:// to 10.1.2.3 must be refused with require_tls")
        } catch let error as ConfigError {
            #expect(error.message.contains("plain ws:// to 10.1.2.3"), "\(error)")
            #expect(error.message.contains("wss://"), "\(error)")
        }
        #expect(throws: ConfigError.self) { try decode("url: http://db.internal:8000\nrequire_tls: true\n") }
        #expect(try decode("url: ws://127.0.0.1:8000\nrequire_tls: true\n").requireTLS)
        #expect(try decode("url: ws://localhost:8000\nrequire_tls: true\n").requireTLS)
        #expect(try decode("url: wss://db.example:8000\nrequire_tls: true\n").requireTLS)
        #expect(try decode("url: ws://10.1.2.3:8000\n").requireTLS == false)  // off by default
    }
}
