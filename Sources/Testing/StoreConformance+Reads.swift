import EmbedStarCore
import Foundation
import Testing

/// Reads: counts, nearest neighbours, the report's scan.
extension StoreConformance {
    func statsFollowTheData(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 6)
        let claimed = try await claim(store, "a", limit: 4)
        _ = try await store.write([embedded(claimed[0]), embedded(claimed[1])], owner: "a")
        _ = try await store.recordFailures([failure(claimed[2], permanent: true)], owner: "a", maxAttempts: 5)
        #expect(try await store.stats(modelIdentity: model) == StoreStats(total: 6, embedded: 2, pending: 3, failed: 1, leased: 1))
    }

    func nearestOrdersByCosineAndFilters(_ store: any RepoStore, _ check: StoreCheck) async throws {
        _ = try await loaded(store, 5)
        let claimed = try await claim(store, "a")
        let vectors: [[Float]] = [[1, 0, 0, 0], [0.7, 0.7, 0, 0], [0, 0, 1, 0], [0, 0, 0, 2], [-1, 0, 0, 0]]
        _ = try await store.write(zip(claimed, vectors).map { embedded($0, $1) }, owner: "a")
        let hits = try await store.nearest(to: [2, 0.2, 0, 0], limit: 3, filter: SearchFilter())
        #expect(hits.map(\.repo.id) == [claimed[0].repo.id, claimed[1].repo.id, claimed[2].repo.id] || hits.map(\.repo.id) == [claimed[0].repo.id, claimed[1].repo.id, claimed[3].repo.id],
                "\(check): hits must come closest first")
        #expect(hits.count == 3)
        if hits.count == 3 {
            #expect(hits[0].score > hits[1].score && hits[1].score > hits[2].score)
            #expect(abs(hits[0].score - 0.995) < 0.01, "\(check): the score must be the cosine similarity")
        }
        let target = try #require(claimed.first { $0.repo.language != nil })
        let language = try #require(target.repo.language)
        let filtered = try await store.nearest(to: [1, 0, 0, 0], limit: 5, filter: SearchFilter(language: language.uppercased()))
        #expect(!filtered.isEmpty && filtered.allSatisfy { $0.repo.language == language }, "\(check): the language filter must ignore case")
        #expect(filtered.contains { $0.repo.id == target.repo.id })
    }

    func scanSeesEveryRepoOnceWithItsState(_ store: any RepoStore, _ check: StoreCheck) async throws {
        // Pages smaller than the data, a page boundary on the last repo, states as stats counts them.
        let loadedAt = Date()
        let repos = try await loaded(store, 9)
        let claimed = try await claim(store, "a", limit: 5)
        _ = try await store.write([embedded(claimed[0], [0.6, 0.8, 0, 0], hash: "h0"), embedded(claimed[1])], owner: "a")
        _ = try await store.recordFailures([failure(claimed[2], permanent: true)], owner: "a", maxAttempts: 5)
        _ = try await store.recordFailures([failure(claimed[3])], owner: "a", maxAttempts: 5)
        var seen: [RepoID: StoredRepo] = [:]
        var pages = 0
        try await store.forEachPage(modelIdentity: model, pageSize: 3) { page in
            pages += 1
            #expect(page.repos.count <= 3, "\(check): a page holds at most its limit")
            for stored in page.repos {
                #expect(seen[stored.repo.id] == nil, "\(check): \(stored.repo.id) came twice")
                seen[stored.repo.id] = stored
            }
        }
        #expect(Set(seen.keys) == Set(repos.map(\.id)), "\(check): every repo once")
        #expect(pages <= 4, "\(check): \(pages) pages of 3 for 9 repos")
        let first = seen[claimed[0].repo.id]
        #expect(first?.state == .embedded && first?.embedding == [0.6, 0.8, 0, 0] && first?.embeddingModel == model
                && first?.embeddingHash == "h0" && first?.embeddingGeneratedAt != nil, "\(check): the vector and what made it")
        #expect(first?.repo.fullName == claimed[0].repo.fullName)
        let failed = seen[claimed[2].repo.id]
        #expect(failed?.state == .failed && failed?.lastError == "provider said no: ✗" && failed?.attempts == 1)
        let retrying = seen[claimed[3].repo.id]
        #expect(retrying?.state == .pending && retrying?.lastError == "provider said no: ✗" && retrying?.attempts == 1,
                "\(check): a repo waiting to retry is pending with its error")
        #expect(seen.values.filter { $0.embedding == nil }.count == 7)
        // When a pending repo was queued, if the store records it: around the upsert; never for an embedded one.
        for stored in seen.values {
            if let since = stored.pendingSince {
                #expect(stored.state == .pending && abs(since.timeIntervalSince(loadedAt)) < 60, "\(check): pending since \(since)")
            }
        }
        var counted = StoreStats(total: seen.count, embedded: 0, pending: 0, failed: 0, leased: 0)
        for stored in seen.values {
            switch stored.state {
            case .embedded: counted.embedded += 1
            case .pending: counted.pending += 1
            case .failed: counted.failed += 1
            }
        }
        var stats = try await store.stats(modelIdentity: model)
        stats.leased = 0
        #expect(counted == stats, "\(check): a scan counts what stats counts")
        let other = try await store.scan(modelIdentity: "conformance/other@4", after: nil, limit: 100)
        #expect(other.repos.first { $0.repo.id == claimed[0].repo.id }?.state == .pending, "\(check): another model's vector is pending")
    }
}
