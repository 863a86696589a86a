import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import EmbedStarTesting
import Testing

/// Runs the built `embed-star` executable as a user would and checks exit codes and output.
///
/// Nothing here blocks a thread of Swift's cooperative pool (as many threads as cores: two on
/// the CI machine). Pipes are read and exits awaited on threads of their own, so a test waiting
/// for a subprocess never stalls the tests running beside it in the same process.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["EMBED_STAR_BIN"] { return URL(fileURLWithPath: path) }
        // Tests run from the build folder, next to the executable.
        var folder = Bundle.main.bundleURL
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("embed-star").path), folder.path != "/" {
            folder.deleteLastPathComponent()
        }
        return folder.appendingPathComponent("embed-star")
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("embed-star-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    /// Starts the executable; `environment` is added to a clean one (no inherited config variables).
    func start(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) throws -> Subprocess {
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LOG_LEVEL": "info"]
        env.merge(environment) { $1 }
        return try Subprocess(Self.executable, arguments, environment: env, directory: directory ?? folder)
    }

    func run(_ arguments: [String], environment: [String: String] = [:], in directory: URL? = nil) async throws -> Result {
        let process = try start(arguments, environment: environment, in: directory)
        let status = await process.exit()
        return Result(status: status, stdout: process.stdout, stderr: process.stderr)
    }

    /// `status --json` as a dictionary.
    func status(_ extra: [String] = []) async throws -> [String: Any] {
        let result = try await run(["status", "--json"] + extra)
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "status: \(result.stderr)")
    }

    func cleanUp() {
        try? FileManager.default.removeItem(at: folder)
    }
}

/// A child process whose output is collected as it arrives, by two reader threads. Tests read
/// the output so far, wait for a condition on it, signal the process, and await its exit, all
/// without blocking a cooperative thread.
final class Subprocess: Sendable {
    private struct State {
        var stdout = Data()
        var stderr = Data()
        var status: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }

    let pid: Int32
    private let state = Mutex(State())

    init(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil, directory: URL? = nil) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        // Done once the process has exited and both pipes are drained. (Not waitUntilExit: on
        // Linux it spins a run loop, a busy thread per process.)
        let done = DispatchGroup()
        done.enter()
        process.terminationHandler = { _ in done.leave() }
        try process.run()
        pid = process.processIdentifier
        for (pipe, isErr) in [(out, false), (err, true)] {
            done.enter()
            let handle = pipe.fileHandleForReading
            Thread { [self] in
                while true {
                    let chunk = handle.availableData  // blocks this thread only
                    if chunk.isEmpty { break }
                    state.withLock { isErr ? $0.stderr.append(chunk) : $0.stdout.append(chunk) }
                }
                done.leave()
            }.start()
        }
        done.notify(queue: .global()) { [self] in
            let status = process.terminationStatus
            let waiters = state.withLock { state in
                state.status = status
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
    }

    var stdout: String { state.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
    var stderr: String { state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }
    var isRunning: Bool { state.withLock { $0.status == nil } }

    func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// The exit status, once the process has exited and both pipes are drained.
    func exit() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = state.withLock { state -> Int32? in
                if state.status == nil { state.waiters.append(continuation) }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Waits until stderr satisfies `condition` (true) or the process exits or `timeout` passes
    /// (false): a wait for a condition, not for a fixed time.
    func waitForStderr(timeout: Duration, _ condition: (String) -> Bool) async throws -> Bool {
        try await waitUntil(timeout: timeout, every: .milliseconds(50)) { condition(self.stderr) || !self.isRunning }
        return condition(stderr)
    }
}

/// GETs `url` (or POSTs `body` to it) and returns the answer's bytes: the test servers' control
/// and counting endpoints (the model proxy's `__stats`, `__mode`, `__faults`).
func fetchBytes(_ url: String, body: Data? = nil, timeout: TimeAmount = .seconds(300)) async throws -> Data {
    var request = HTTPClientRequest(url: url)
    if let body {
        request.method = .POST
        request.body = .bytes(ByteBuffer(bytes: body))
    }
    let response = try await HTTPClient.shared.execute(request, timeout: timeout)
    var buffer = try await response.body.collect(upTo: 64 << 20)
    return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
}
