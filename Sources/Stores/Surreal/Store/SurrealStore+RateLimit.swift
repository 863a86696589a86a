import EmbedStarCore
import Foundation
import SurrealClient

/// The provider account's rate limits, shared by the instances using this database
/// (``RepoStore/shareRateLimit(_:)``), on the engine's clock (`time::now()`, so instances on
/// hosts whose clocks differ agree):
/// - `embed_star_rate_member:[account, owner]`: one record per instance, written only by it
///   (`active_until`), so instances never contend for one record; counted by account. Records
///   of instances gone for an hour are deleted by the next report.
/// - `embed_star_rate_account:[account]`: the fleet's pause (`paused_until`, only ever moved
///   later) and the header limits last reported; written only when a report carries them.
extension SurrealStore {
    static let rateMembers = "embed_star_rate_member"
    static let rateAccounts = "embed_star_rate_account"

    public func shareRateLimit(_ report: RateLimitReport) async throws -> RateLimitShare {
        let record = try await dialect().recordFunction
        var statements = [
            "LET $now = time::now()",
            "LET $member = \(record)('\(Self.rateMembers)', [$account, $owner])",
            "LET $acct = \(record)('\(Self.rateAccounts)', [$account])",
            "UPSERT $member SET account = $account, owner = $owner, active_until = IF $active THEN $now + $for ELSE $now END RETURN NONE",
            "DELETE \(Self.rateMembers) WHERE account = $account AND active_until < $now - 1h RETURN NONE",
        ]
        var variables: [String: SurrealValue] = [
            "account": .string(report.account), "owner": .string(report.owner), "active": .bool(report.active),
            "for": .duration(SurrealDuration(report.activeFor)),
        ]
        if report.pausedFor > .zero {
            variables["pause"] = .duration(SurrealDuration(report.pausedFor))
            statements += [
                "LET $old = (SELECT VALUE paused_until FROM $acct)[0]",
                "IF $old IS NONE OR $old < $now + $pause { UPSERT $acct SET paused_until = $now + $pause RETURN NONE }",
            ]
        }
        if let limit = report.requestsLimit {
            variables["requests"] = .int(Int64(limit))
            statements.append("UPSERT $acct SET requests_limit = $requests RETURN NONE")
        }
        if let limit = report.tokensLimit {
            variables["tokens"] = .int(Int64(limit))
            statements.append("UPSERT $acct SET tokens_limit = $tokens RETURN NONE")
        }
        statements += [
            "LET $shared = (SELECT paused_until, requests_limit, tokens_limit FROM $acct)[0]",
            """
            RETURN {
              others: array::len((SELECT id FROM \(Self.rateMembers) WHERE account = $account AND owner != $owner AND active_until > $now)),
              paused_ms: IF $shared.paused_until > $now THEN duration::millis($shared.paused_until - $now) ELSE 0 END,
              requests_limit: $shared.requests_limit, tokens_limit: $shared.tokens_limit
            }
            """,
        ]
        let results = try await retryingConflicts { try await self.client.query(statements.joined(separator: ";\n"), variables) }
        guard let answer = results.last else { throw SurrealError(.protocolViolation, "sharing the rate limits came back without an answer") }
        return RateLimitShare(
            others: Int(answer["others"]?.int ?? 0), pausedFor: .milliseconds(answer["paused_ms"]?.int ?? 0),
            requestsLimit: answer["requests_limit"]?.int.map { Int($0) }, tokensLimit: answer["tokens_limit"]?.int.map { Int($0) })
    }

    public var sharesRateLimits: Bool { true }
}
