import Foundation
import SurrealClient
import Testing

@Suite(.enabled(if: DevServer.available, "needs EMBED_STAR_SURREAL (scripts/test starts the dev server)"))
struct ClientTests {
    static let schemes = ["ws", "http"]

    @Test(arguments: schemes)
    func versionAndPing(_ scheme: String) async throws {
        let client = try DevServer.client(scheme)
        defer { Task { await client.close() } }
        #expect(try await client.version().hasPrefix("surrealdb-"))
        try await client.ping()
    }

    /// A client released without `close` (a test that threw, a store never shut down) must not
    /// stop the process: AsyncHTTPClient stops a debug build whose client is released running,
    /// and a failing SurrealDB test took the whole test run down with it.
    @Test(arguments: schemes)
    func aClientReleasedWithoutCloseDoesNotStopTheProcess(_ scheme: String) async throws {
        do {
            let client = try DevServer.client(scheme)
            #expect(try await client.query("RETURN 1").first?.int == 1)
        }
        try await Task.sleep(for: .milliseconds(300))  // its shutdown runs in the background
    }

    @Test(arguments: schemes)
    func everyTypeRoundTripsThroughTheEngine(_ scheme: String) async throws {
        let client = try DevServer.client(scheme)
        defer { Task { await client.close() } }
        var samples = CBORTests.samples.filter {
            // The engine answers NULL for NONE inside RETURN, and keeps unknown tags to itself.
            if case .tagged = $0 { return false }
            return true
        }
        samples.removeAll { if case .bytes = $0 { return false }; return $0 == .none }
        for value in samples {
            let result = try await client.query("RETURN $v", ["v": value])
            #expect(result == [value], "\(value)")
        }
        let vector = (0..<1536).map { Float($0) / 1536 }
        let back = try await client.query("RETURN $v", ["v": .floats(vector)])
        #expect(back.first?.floatArray == vector)
        try await client.query("CREATE thing:1 SET nothing = NONE, v = $v", ["v": .floats(vector)])
        let stored = try await client.query("SELECT * FROM ONLY thing:1")
        #expect(stored.first?["v"]?.floatArray == vector)
        #expect(stored.first?["nothing"] == nil)
    }

    @Test(arguments: schemes)
    func wrongPasswordIsAClearAuthenticationError(_ scheme: String) async throws {
        let client = try DevServer.client(scheme, password: "wrong")
        defer { Task { await client.close() } }
        do {
            _ = try await client.query("RETURN 1")
            Issue.record("expected an error")
        } catch let error as SurrealError {
            #expect(error.kind == .authentication, "\(error)")
            #expect(!error.description.contains("wrong"))
        }
    }

    @Test(arguments: schemes)
    func statementErrorCarriesTheServersMessage(_ scheme: String) async throws {
        let client = try DevServer.client(scheme)
        defer { Task { await client.close() } }
        do {
            _ = try await client.query("RETURN 1; THROW 'boom'")
            Issue.record("expected an error")
        } catch let error as SurrealError {
            #expect(error.kind == .statement)
            #expect(error.message.contains("boom"))
        }
        do {
            _ = try await client.query("SELECT * FROM ;")
            Issue.record("expected an error")
        } catch let error as SurrealError {
            #expect(error.kind == .rpc)
            #expect(error.message.contains("Parse error"))
        }
    }

    @Test(arguments: schemes)
    func manyConcurrentCallsOverASmallPool(_ scheme: String) async throws {
        let client = try DevServer.client(scheme)
        defer { Task { await client.close() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 0..<60 {
                group.addTask {
                    let result = try await client.query("RETURN $n * 2", ["n": .int(Int64(number))])
                    #expect(result == [.int(Int64(number * 2))])
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func unreachableServerFailsFastAndRetryably() async throws {
        for scheme in Self.schemes {
            var configuration = try DevServer.configuration(scheme, address: "127.0.0.1:1")
            configuration.connectTimeout = .seconds(2)
            let client = SurrealClient(configuration: configuration)
            do {
                _ = try await client.query("RETURN 1")
                Issue.record("expected an error")
            } catch let error as SurrealError {
                #expect(error.isRetryable, "\(scheme): \(error)")
            }
            await client.close()
        }
    }
}
