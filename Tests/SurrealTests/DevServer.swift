import EmbedStarTesting
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
        private(set) var port: Int
        let path: String
        /// Extra arguments, such as `--tls-cert` and `--tls-key`.
        let arguments: [String]
        /// The server's output, read when it does not come up.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-dev-server-\(UUID().uuidString.prefix(8)).log")
        private var process: Foundation.Process?

        init(path: String, arguments: [String] = []) throws {
            self.path = path
            self.arguments = arguments
            port = try LocalPort.free()
        }

        /// Starts the server (again, on the same port, after `stop`).
        func start() throws {
            let environment = ProcessInfo.processInfo.environment
            let python = try #require(environment["EMBED_STAR_SURREAL_PYTHON"] ?? environment["EMBED_STAR_PYTHON"], "EMBED_STAR_SURREAL_PYTHON is not set")
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("testing/surreal_dev_server.py").path
            let process = Foundation.Process()
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = [script, "--bind", "127.0.0.1:\(port)", "--user", "root", "--pass", "root"] + arguments + [path]
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let output = try FileHandle(forWritingTo: log)
            process.standardOutput = output
            process.standardError = output
            try process.run()
            try output.close()
            self.process = process
        }

        /// The first start: the server's own, started and answering (`answers`, given the port:
        /// a plain `version` request by default). A server that exits before it answers (the 2.3
        /// engine's panic, or a port taken between `LocalPort.free` and its bind) is started again
        /// on a new port, said on stderr with its log, at most twice; then it throws, with the log.
        func startAndWaitUntilUp(answers: (@Sendable (Int) async -> Bool)? = nil) async throws {
            try await startAnswering(answers, what: "come up") { self.port = try LocalPort.free() }
        }

        /// A start after `stop`, on the same port (the clients of the stopped one come back to
        /// it): answering, or started again there a second later if it exited first, at most
        /// twice; then it throws, with the log.
        func restartAndWaitUntilUp() async throws {
            try await startAnswering(nil, what: "come back") { try await Task.sleep(for: .seconds(1)) }
        }

        /// Starts the server until it answers, three times at most; `beforeRetry` runs between a
        /// server that exited and the next start (a new port, or a pause).
        private func startAnswering(_ answers: (@Sendable (Int) async -> Bool)?, what: String,
                                    beforeRetry: () async throws -> Void) async throws {
            for attempt in 1...3 {
                try start()
                if try await waitForAnswer(answers) { return }
                let tail = logTail()
                guard let process, !process.isRunning, attempt < 3 else {
                    throw NotUp(description: "dev server on port \(port) did not \(what): \(describeState())\n\(tail)")
                }
                FileHandle.standardError.write(Data("DevServer: the dev server on port \(port) exited before it answered (status \(process.terminationStatus)); starting it again. Its log:\n\(tail)\n".utf8))
                self.process = nil
                try await beforeRetry()
            }
        }

        struct NotUp: Error, CustomStringConvertible {
            let description: String
        }

        /// True once the server answers (`answers`, or `version` over plain HTTP) with its process
        /// running (not another's server on the port); false after 30 s or once it has exited.
        private func waitForAnswer(_ answers: (@Sendable (Int) async -> Bool)?) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                var up = false
                if let answers {
                    up = await answers(port)
                } else if let client = try? SurrealClient(configuration: DevServer.configuration("http", address: "127.0.0.1:\(port)")) {
                    up = (try? await client.version()) != nil
                    await client.close()  // up or not: a client left open ends the test process at its deinit
                }
                if up, process?.isRunning == true { return true }
                if let process, !process.isRunning { return false }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }

        private func describeState() -> String {
            guard let process else { return "not started" }
            return process.isRunning ? "still running after 30 s" : "exited with status \(process.terminationStatus)"
        }

        private func logTail() -> String {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(10).joined(separator: "\n")
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
            try? FileManager.default.removeItem(at: log)
        }
    }
}
