@testable import EmbedStarSurrealStore
import SurrealClient
import Testing

/// The store speaks the SurrealQL of the server's version (issue 15, item 1).
@Suite struct DialectTests {
    @Test func versionsTwoAndThreeGetTheirOwnRecordFunction() throws {
        let two = try SurrealDialect(serverVersion: "surrealdb-2.3.10")
        #expect(two.major == 2 && two.minor == 3)
        #expect(two.recordFunction == "type::thing")
        #expect(!two.hasCountIndexes)
        let three = try SurrealDialect(serverVersion: "surrealdb-3.2.4")
        #expect(three.recordFunction == "type::record")
        #expect(three.hasCountIndexes)
        #expect(try SurrealDialect(serverVersion: "2.0.0").major == 2)
    }

    /// `Migrations.newest` decides what `run` applies and what `openForReading` requires: it
    /// must be the last migration on every engine, in order, without gaps.
    @Test func newestIsTheLastMigration() throws {
        for version in ["surrealdb-2.3.10", "surrealdb-3.2.4"] {
            let migrations = Migrations(table: "repo", watchedFields: SurrealStore.collectorFields, dialect: try SurrealDialect(serverVersion: version))
            #expect(migrations.all.map(\.version) == Array(1...Migrations.newest), "\(version): \(migrations.all.map(\.version))")
        }
    }

    @Test func aServerOlderThanTwoIsRefusedByItsVersion() {
        do {
            _ = try SurrealDialect(serverVersion: "surrealdb-1.5.4")
            Issue.record("a 1.x server must be refused")
        } catch let error as SurrealError {
            #expect(error.kind == .unsupportedServer)
            #expect(error.message.contains("surrealdb-1.5.4"), "\(error)")
            #expect(error.message.contains("2.0 or newer"), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func anUnreadableVersionIsAClearError() {
        #expect(throws: SurrealError.self) { try SurrealDialect(serverVersion: "unknown") }
    }

    @Test func migrationsUseTheDialectsRecordFunction() throws {
        for (version, function, other) in [("surrealdb-2.3.10", "type::thing(", "type::record("), ("surrealdb-3.2.4", "type::record(", "type::thing(")] {
            let migrations = Migrations(table: "repo", watchedFields: ["description"], dialect: try SurrealDialect(serverVersion: version))
            let sql = migrations.all.flatMap { $0.statements + $0.optional }.joined(separator: "\n")
            #expect(sql.contains(function))
            #expect(!sql.contains(other), "\(version): \(other) must not appear")
            #expect(sql.contains(" COUNT") == (function == "type::record("))
        }
    }
}

/// With the lost-write guards (every 2.x server, 3.x unless declared safe) an instance's claims wait in one line: never two at once, each in its turn.
@Suite struct ClaimLineTests {
    @Test func claimsRunOneAtATimeUnlessA3xServerIsDeclaredSafe() async throws {
        #expect(try SurrealDialect(serverVersion: "surrealdb-2.3.10").claimsOneAtATime)
        #expect(try SurrealDialect(serverVersion: "surrealdb-2.3.10", guarded: false).claimsOneAtATime, "2.x is always guarded")
        #expect(try SurrealDialect(serverVersion: "surrealdb-3.2.4").claimsOneAtATime, "3.x on memory or SurrealKV loses writes too")
        #expect(try !SurrealDialect(serverVersion: "surrealdb-3.2.4", guarded: false).claimsOneAtATime)
        let line = ClaimLine()
        let tally = Tally()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    await line.enter()
                    await tally.enter()
                    await Task.yield()
                    await tally.leave()
                    await line.leave()
                }
            }
        }
        let (most, done) = (await tally.most, await tally.done)
        #expect(most == 1 && done == 8)
    }

    actor Tally {
        var inside = 0, most = 0, done = 0
        func enter() { inside += 1; most = max(most, inside) }
        func leave() { inside -= 1; done += 1 }
    }

    /// 2.x reads the sweep's next chunk as a record range after the cursor it last saw; 3.x
    /// compares ids (it reads the range slower).
    @Test func theSweepReadsARecordRangeOn2xOnly() throws {
        let two = SurrealStore.sweepSQL(table: "repo", dialect: try SurrealDialect(serverVersion: "surrealdb-2.3.10"))
        let three = SurrealStore.sweepSQL(table: "repo", dialect: try SurrealDialect(serverVersion: "surrealdb-3.2.4"))
        #expect(two.contains("ELSE IF $cursor = $expected { (SELECT VALUE id FROM $range LIMIT $n) }"))
        #expect(!three.contains("$range") && three.contains("WHERE id > $cursor ORDER BY id"))
        let after = SurrealStore.range(of: "repo", after: .recordID(RecordID(table: "repo", id: "syn0042")))
        #expect(after == .recordID(RecordID(table: "repo", id: .tagged(49, [.tagged(51, "syn0042"), .null]))))
        #expect(SurrealStore.range(of: "repo", after: nil) == .recordID(RecordID(table: "repo", id: .tagged(49, [.null, .null]))))
    }
}
