import EmbedStarCore
import EmbedStarMockProvider
import EmbedStarMockStore
@testable import EmbedStarReport
import Foundation
import Testing

/// The report's parts on data whose answers are known: vectors written by hand into the mock store.
struct ReportUnitTests {
    static let model = "mock/mock-embed@8"

    /// 120 repos around one direction, one reversed (an outlier), two under different names with
    /// the same vector (near-duplicates), two failures of one cause and one of another.
    static func fixture() async throws -> (MockStore, MockProvider) {
        var repos = (0..<120).map { n in
            Repo(id: RepoID("repo:r\(n)"), fullName: "owner\(n % 7)/project-\(n)", description: n % 10 == 0 ? nil : "Project \(n) does things",
                 stars: n, language: ["Rust", "Go", "Swift"][n % 3])
        }
        repos.append(Repo(id: RepoID("repo:copy"), fullName: "someone/else-copy", description: "Project 5 does things", language: "Go"))
        let store = MockStore(repos: repos)
        var configuration = MockProvider.Configuration()
        configuration.dimensions = 8
        let provider = MockProvider(configuration: configuration)
        let identity = ModelIdentity.make(provider: "mock", model: provider.model)
        #expect(identity == model)
        var generator = SeededRandom(seed: 7)
        let claimed = try await store.claimPending(ClaimRequest(owner: "t", limit: 500, leaseDuration: .seconds(60), modelIdentity: identity))
        var writes: [RepoWrite] = []
        var failures: [RepoFailure] = []
        for claim in claimed {
            let id = claim.repo.id.rawValue
            switch id {
            case "repo:r3": failures.append(RepoFailure(id: claim.repo.id, revision: claim.revision, reason: "HTTP 400: input 17 is too long (9120 tokens)", permanent: true, retryAfter: .zero))
            case "repo:r4": failures.append(RepoFailure(id: claim.repo.id, revision: claim.revision, reason: "HTTP 400: input 2 is too long (812 tokens)", permanent: false, retryAfter: .zero))
            case "repo:r8": failures.append(RepoFailure(id: claim.repo.id, revision: claim.revision, reason: "timed out after 30 s", permanent: false, retryAfter: .zero))
            default:
                var vector: [Float] = [5, 1, 1, 1, 1, 1, 1, 1].map { $0 + Float.random(in: -0.6...0.6, using: &generator) }
                if id == "repo:r9" { vector = vector.map { -$0 } }
                if id == "repo:copy" || id == "repo:r5" { vector = [5, 3, 0, 0, 0, 0, 0, 0] }
                let text = try DocumentText(providerName: "mock", model: provider.model, text: TextConfiguration()).text(for: claim.repo)
                let hash = id == "repo:r20" ? "stale" : ContentHash.make(text: text, model: identity)
                writes.append(RepoWrite(id: claim.repo.id, revision: claim.revision, modelIdentity: identity,
                                        change: .embedded(vector: vector, contentHash: hash, generatedAt: Date())))
            }
        }
        _ = try await store.write(writes, owner: "t")
        _ = try await store.recordFailures(failures, owner: "t", maxAttempts: 3)
        return (store, provider)
    }

    @Test func figuresComeFromTheStoredData() async throws {
        let (store, provider) = try await Self.fixture()
        var options = ReportOptions()
        options.sampleSize = 50
        options.duplicateThreshold = 0.999
        options.outlierDeviations = 3
        let report = try await ReportBuilder(sources: ReportSources(store: store, storeName: "mock", provider: provider, providerName: "mock"),
                                             options: options).build()
        let stats = try await store.stats(modelIdentity: Self.model)
        #expect(report.backlog.total == 121 && report.backlog.embedded == stats.embedded && report.backlog.failed == 1 && report.backlog.pending == 2)
        #expect(report.backlog.scanned.total == 121 && report.backlog.scanned.embedded == stats.embedded && report.backlog.scanned.pending == 2)
        #expect(report.backlog.vectorsByModel.first?.model == Self.model && report.backlog.vectorsByModel.first?.vectors == 118)
        // Pending since the store was filled: a moment ago, recorded for every pending repo.
        #expect(report.backlog.pendingWithoutTime == 0 && (0..<60).contains(report.backlog.oldestPendingSeconds ?? -1))

        // One group for the two "too long" answers, one for the timeout.
        let groups = report.failures.groups
        #expect(groups.count == 2)
        #expect(groups.first?.reason == "HTTP #: input # is too long (# tokens)" && groups.first?.count == 2
                && groups.first?.failed == 1 && groups.first?.retrying == 1)
        #expect(report.failures.failed == 1 && report.failures.retrying == 2)

        #expect(report.quality.vectors.checked == 118 && report.quality.vectors.wrongDimension == 0 && report.quality.vectors.zeroOrNotFinite == 0)
        #expect(report.quality.vectors.staleHash == 1 && report.quality.vectors.staleExamples == ["owner6/project-20"])
        #expect(report.quality.outliers.items.map(\.repo) == ["owner2/project-9"], "the reversed vector is the outlier, and only it")
        #expect(report.quality.outliers.items.first?.text.contains("Project 9 does things") == true, "with the text that made it")
        #expect(report.quality.nearDuplicates.groups.map(\.repos) == [["owner5/project-5", "someone/else-copy"]])
        #expect(report.quality.selfRetrieval?.queries == 50)
        #expect(report.map.points == 118)
        #expect(report.service.available == false)

        // The same seed samples the same repos; another seed others.
        let again = try await ReportBuilder(sources: ReportSources(store: store, storeName: "mock", provider: provider, providerName: "mock"),
                                            options: options).build()
        #expect(again.quality.selfRetrieval?.top10 == report.quality.selfRetrieval?.top10)
        #expect(again.quality.selfRetrieval?.worst.map(\.repo) == report.quality.selfRetrieval?.worst.map(\.repo))
        options.sampleSize = 0
        let none = try await ReportBuilder(sources: ReportSources(store: store, storeName: "mock", provider: provider, providerName: "mock"),
                                           options: options).build()
        #expect(none.quality.selfRetrieval == nil && none.quality.notes == ["self-retrieval not measured: the sample is 0 (--sample)"])
        options.seed = 99
        options.sampleSize = 10
        let other = try await ReportBuilder(sources: ReportSources(store: store, storeName: "mock", provider: provider, providerName: "mock"),
                                            options: options).build()
        #expect(other.quality.selfRetrieval?.queries == 10)

        let page = try ReportPage.render(report)
        #expect(page.contains("owner2/project-9") && page.contains("HTTP #: input # is too long (# tokens)"))
        #expect(page.components(separatedBy: "<circle class=\"point\"").count - 1 == 118)
        for fetch in ["<script", "<link", "<img", "src=", "url(", "@import"] { #expect(!page.contains(fetch), "the page fetches nothing: \(fetch)") }
        let json = try JSONSerialization.jsonObject(with: report.json()) as? [String: Any]
        #expect((json?["backlog"] as? [String: Any])?["total"] as? Int == 121)
        #expect((json?["map"] as? [String: Any])?["svg"] == nil, "the SVG stays out of the JSON")
    }

    /// During a model change: repos holding the old model's vector are embedded again with the
    /// current one and their neighbourhoods compared.
    @Test func modelAgreementComparesNeighbourhoods() async throws {
        var configuration = MockProvider.Configuration()
        configuration.dimensions = 8
        let provider = MockProvider(configuration: configuration)
        let document = try DocumentText(providerName: "mock", model: provider.model, text: TextConfiguration())
        func report(oldVectors: ([String]) async throws -> [[Float]]) async throws -> Report.ModelAgreement? {
            let repos = (0..<60).map { Repo(id: RepoID("repo:m\($0)"), fullName: "o/p\($0)", description: "Repo \($0) in a field of its own") }
            let store = MockStore(repos: repos)
            let claimed = try await store.claimPending(ClaimRequest(owner: "t", limit: 100, leaseDuration: .seconds(60), modelIdentity: "old/model@8"))
            let vectors = try await oldVectors(claimed.map { document.text(for: $0.repo) })
            _ = try await store.write(zip(claimed, vectors).map { claim, vector in
                RepoWrite(id: claim.repo.id, revision: claim.revision, modelIdentity: "old/model@8",
                          change: .embedded(vector: vector, contentHash: "h", generatedAt: Date()))
            }, owner: "t")
            var options = ReportOptions()
            options.agreementRepos = 40
            let built = try await ReportBuilder(sources: ReportSources(store: store, storeName: "mock", provider: provider, providerName: "mock"),
                                                options: options).build()
            #expect(built.backlog.vectorsByModel.map(\.model) == ["mock/mock-embed@8", "old/model@8"], "the current model first, with none yet")
            return built.quality.modelAgreement
        }
        // The old model made the very vectors the current one makes: full agreement.
        let same = try await report { try await provider.embed($0, mode: .document) }
        #expect(same?.otherModel == "old/model@8" && same?.repos == 40 && same?.k == 10)
        #expect(same?.overlap == 1)
        // Unrelated old vectors: agreement about chance (10 of 39 others).
        var generator = SeededRandom(seed: 3)
        let random = try await report { texts in texts.map { _ in (0..<8).map { _ in Float.random(in: -1...1, using: &generator) } } }
        #expect((random?.overlap ?? 1) < 0.5, "\(String(describing: random))")
    }

    @Test func nearDuplicateGroupsDoNotChain() {
        // a~b and b~c are alike above the threshold, a and c are not: c must not join a's group.
        func unit(_ degrees: Double) -> [Float] { [Float(cos(degrees * .pi / 180)), Float(sin(degrees * .pi / 180)), 0] }
        let sample = [("a", 0.0), ("b", 14.0), ("c", 28.0), ("d", 90.0), ("e", 90.5)].map {
            ReportBuilder.Sampled(id: RepoID("repo:\($0.0)"), name: "o/\($0.0)", language: nil, description: "", vector: unit($0.1))
        }
        let groups = ReportBuilder.nearDuplicates(sample, threshold: 0.95)
        #expect(groups.map(\.repos) == [["o/d", "o/e"], ["o/a", "o/b"]])
        #expect(ReportBuilder.nearDuplicates(sample, threshold: 0.9999).map(\.repos) == [["o/d", "o/e"]])
    }

    @Test func percentagesNeverRoundUpToComplete() {
        #expect(ReportPage.percent(0.9997) == "99.9%")
        #expect(ReportPage.percent(1) == "100.0%")
        #expect(ReportPage.percent(0.5) == "50.0%" && ReportPage.percent(0.999) == "99.9%")
        #expect(ReportPage.percent(nil) == "–")
    }

    @Test func reasonsLoseWhatVariesPerRepo() {
        #expect(FailureReasons.normalize("provider rejected repo:abc-12 \"some text\" (id 7f3a9c21d4)") == "provider rejected <id> … (id <id>)")
        #expect(FailureReasons.normalize("HTTP 429  after 3.5 s") == "HTTP # after # s")
        #expect(FailureReasons.normalize("unreadable record: field 'stars' is not a number") == "unreadable record: field … is not a number")
    }

    @Test func metricsGiveRatesAndQuantiles() {
        let first = MetricsScrape(text: """
            # TYPE embed_star_embeddings_total counter
            embed_star_embeddings_total{model="m",provider="p"} 100
            embed_star_provider_requests_total{outcome="ok",provider="p"} 10
            embed_star_provider_requests_total{outcome="rate_limited",provider="p"} 1
            embed_star_embedding_duration_seconds_bucket{le="0.1"} 5
            embed_star_embedding_duration_seconds_bucket{le="0.5"} 10
            embed_star_embedding_duration_seconds_bucket{le="+Inf"} 10
            embed_star_cache_hits_total 0
            embed_star_cache_misses_total 10
            """, at: Date(timeIntervalSince1970: 0))
        let last = MetricsScrape(text: """
            embed_star_embeddings_total{model="m",provider="p"} 300
            embed_star_provider_requests_total{outcome="ok",provider="p"} 28
            embed_star_provider_requests_total{outcome="retryable",provider="p"} 2
            embed_star_provider_requests_total{outcome="rate_limited",provider="p"} 5
            embed_star_embeddings_errors_total{kind="timeout",provider="p"} 2
            embed_star_embedding_duration_seconds_bucket{le="0.1"} 5
            embed_star_embedding_duration_seconds_bucket{le="0.5"} 30
            embed_star_embedding_duration_seconds_bucket{le="+Inf"} 30
            embed_star_circuit_breaker_state{provider="p"} 1
            embed_star_cache_hits_total 30
            embed_star_cache_misses_total 40
            embed_star_repos_unchanged_total 4
            """, at: Date(timeIntervalSince1970: 20))
        let service = Report.Service.from(last, since: first, source: "http://x/metrics")
        #expect(service.windowSeconds == 20 && service.embeddingsPerSecond == 10)
        #expect(service.errorRatio == 0.1, "2 failed of 20 calls that were not rate limited")
        #expect(service.rateLimitWaits == nil)
        #expect(service.errorsByKind == ["timeout": 2])
        #expect(service.circuit == "open")
        #expect(service.cacheHitRate == 0.5)
        // In the window all 20 observations fell between 0.1 and 0.5 s: p50 is the middle of it.
        #expect(abs((service.providerLatencyP50Ms ?? 0) - 300) < 1e-6)
    }
}
