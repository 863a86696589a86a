import EmbedStarCore
import Foundation
import SurrealClient

/// The provider account's rate limits, shared by the instances using this database
/// (``RepoStore/shareRateLimit(_:)``), on the engine's clock (`time::now()`, so instances on
/// hosts whose clocks differ agree): one record per instance and account,
/// `embed_star_rate_member:[account, owner]`, written only by that instance (its activity, its
/// own pause, the limits its headers said and when), so no two instances write one record; the
/// answer is read from all of the account's (`others` active, the latest pause, the freshest
/// limits). Records of instances silent for an hour are deleted now and then by a report.
extension SurrealStore {
    static let rateMembers = "embed_star_rate_member"

    public func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare {
        let record = try await dialect().recordFunction
        let learned = report.requestsLimit != nil || report.tokensLimit != nil
        var statements = [
            "LET $now = time::now()",
            """
            UPSERT \(record)('\(Self.rateMembers)', [$account, $owner]) SET account = $account, owner = $owner, seen_at = $now, \
            active_until = IF $active THEN $now + $for ELSE $now END, paused_until = IF $paused THEN $now + $pause ELSE NONE END\
            \(learned ? ", requests_limit = $requests, tokens_limit = $tokens, limits_at = $now - $age" : "") RETURN NONE
            """,
        ]
        if Int.random(in: 0..<30) == 0 {
            statements.append("DELETE \(Self.rateMembers) WHERE account = $account AND seen_at < $now - 1h RETURN NONE")
        }
        statements.append("""
            SELECT owner, active_until > $now AS active, IF paused_until > $now THEN duration::millis(paused_until - $now) ELSE 0 END AS paused_ms, \
            requests_limit, tokens_limit, IF limits_at != NONE THEN duration::millis($now - limits_at) ELSE NONE END AS limits_age_ms \
            FROM \(Self.rateMembers) WHERE account = $account AND seen_at > $now - 1h
            """)
        let variables: [String: SurrealValue] = [
            "account": .string(report.account), "owner": .string(report.owner), "active": .bool(report.active),
            "for": .duration(SurrealDuration(report.activeFor)), "paused": .bool(report.pausedFor > .zero),
            "pause": .duration(SurrealDuration(report.pausedFor)),
            "requests": report.requestsLimit.map { .int(Int64($0)) } ?? .none, "tokens": report.tokensLimit.map { .int(Int64($0)) } ?? .none,
            "age": .duration(SurrealDuration(report.limitsAge)),
        ]
        let results = try await retryingConflicts { try await self.client.query(statements.joined(separator: ";\n"), variables) }
        guard let rows = results.last?.array else { throw SurrealError(.protocolViolation, "sharing the rate limits came back without the account's members") }
        var others = 0
        var paused: Int64 = 0
        var freshest: (age: Int64, requests: Int?, tokens: Int?)?
        for row in rows {
            if row["owner"]?.string != report.owner, row["active"]?.bool == true { others += 1 }
            paused = max(paused, row["paused_ms"]?.int ?? 0)
            if let age = row["limits_age_ms"]?.int, age < freshest?.age ?? .max {
                freshest = (age, row["requests_limit"]?.int.map { Int($0) }, row["tokens_limit"]?.int.map { Int($0) })
            }
        }
        return RateLimitShare(others: others, pausedFor: .milliseconds(paused), requestsLimit: freshest?.requests, tokensLimit: freshest?.tokens)
    }

    public var sharesRateLimits: Bool { true }
}
