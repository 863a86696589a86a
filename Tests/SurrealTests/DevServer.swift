import Foundation
import SurrealClient
import Testing

/// The SurrealDB dev server that `scripts/services` started (host:port), or one a test starts itself.
enum DevServer {
    static let address = ProcessInfo.processInfo.environment["EMBED_STAR_SURREAL"]
    static var available: Bool { address != nil }

    /// A fresh database per test: tests never see each other's data.
    static func configuration(_ scheme: String, address: String? = nil, password: String = "root", database: String? = nil) throws -> SurrealConfiguration {
        let address = try #require(address ?? Self.address, "EMBED_STAR_SURREAL is not set: run the tests with scripts/test")
        var configuration = try SurrealConfiguration(
            url: "\(scheme)://\(address)", namespace: "test", database: database ?? "t\(UUID().uuidString.prefix(8).lowercased())",
            credentials: .init(user: "root", password: password))
        configuration.poolSize = 2
        configuration.connectTimeout = .seconds(20)  // generous: the model tests load both cores
        configuration.requestTimeout = .seconds(20)
        return configuration
    }

    static func client(_ scheme: String, password: String = "root") throws -> SurrealClient {
        SurrealClient(configuration: try configuration(scheme, password: password))
    }

    /// A dev server process of a test's own, for tests that stop and restart it.
    final class Process: @unchecked Sendable {  // used by one test at a time
        let port: Int
        let path: String
        /// Extra arguments, such as `--tls-cert` and `--tls-key`.
        let arguments: [String]
        private var process: Foundation.Process?

        init(path: String, arguments: [String] = []) throws {
            self.path = path
            self.arguments = arguments
            port = Int.random(in: 20_000...40_000)
        }

        func start() throws {
            let environment = ProcessInfo.processInfo.environment
            let python = try #require(environment["EMBED_STAR_SURREAL_PYTHON"] ?? environment["EMBED_STAR_PYTHON"], "EMBED_STAR_SURREAL_PYTHON is not set")
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("testing/surreal_dev_server.py").path
            let process = Foundation.Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [script, "--bind", "127.0.0.1:\(port)", "--user", "root", "--pass", "root"] + arguments + [path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            self.process = process
        }

        func waitUntilUp() async throws {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if let client = try? SurrealClient(configuration: DevServer.configuration("http", address: "127.0.0.1:\(port)")) {
                    let up = (try? await client.version()) != nil
                    await client.close()  // up or not: a client left open ends the test process at its deinit
                    if up { return }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("dev server on port \(port) did not come up")
        }

        /// Kills the server as a crash would (no goodbye to clients) and waits until it is gone.
        func stop() {
            guard let process else { return }
            kill(process.processIdentifier, SIGKILL)
            // Not waitUntilExit: it spins a run loop on a cooperative thread.
            while process.isRunning { usleep(20_000) }
            self.process = nil
        }

        deinit {
            if let process { kill(process.processIdentifier, SIGKILL) }
        }
    }
}
