import EmbedStarCore
import Foundation

/// One scrape of a Prometheus text exposition (`/metrics`), reduced to its samples.
public struct MetricsScrape: Sendable {
    public struct Sample: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public var samples: [Sample]
    /// When it was taken.
    public var at: Date

    /// Parses the text format: `name{label="value",...} number` lines; comments and lines that
    /// are not samples are skipped.
    public init(text: String, at: Date = Date()) {
        self.at = at
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            var name = Substring(""), labels: [String: String] = [:], rest = Substring("")
            if let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"), open < close {
                name = line[..<open]
                labels = Self.labels(line[line.index(after: open)..<close])
                rest = line[line.index(after: close)...]
            } else if let space = line.firstIndex(of: " ") {
                name = line[..<space]
                rest = line[space...]
            }
            guard !name.isEmpty, let token = rest.split(separator: " ").first else { continue }
            let value: Double? = switch token {
            case "+Inf": .infinity
            case "-Inf": -.infinity
            default: Double(token)
            }
            if let value { samples.append(Sample(name: String(name), labels: labels, value: value)) }
        }
        self.samples = samples
    }

    private static func labels(_ text: Substring) -> [String: String] {
        var labels: [String: String] = [:]
        var rest = text
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: CharacterSet(charactersIn: ", "))
            var index = rest.index(after: equals)
            guard index < rest.endIndex, rest[index] == "\"" else { break }
            index = rest.index(after: index)
            var value = ""
            while index < rest.endIndex, rest[index] != "\"" {
                if rest[index] == "\\", rest.index(after: index) < rest.endIndex {
                    index = rest.index(after: index)
                    value.append(rest[index] == "n" ? "\n" : rest[index])
                } else {
                    value.append(rest[index])
                }
                index = rest.index(after: index)
            }
            labels[key] = value
            rest = index < rest.endIndex ? rest[rest.index(after: index)...] : ""
        }
        return labels
    }

    /// The sum of every sample of `name` whose labels match `filter`.
    func sum(_ name: String, where filter: ([String: String]) -> Bool = { _ in true }) -> Double? {
        let matching = samples.filter { $0.name == name && filter($0.labels) }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }

    /// Cumulative bucket counts of histogram `name`, by upper bound, summed over its series.
    func buckets(_ name: String) -> [(bound: Double, count: Double)] {
        var byBound: [Double: Double] = [:]
        for sample in samples where sample.name == name + "_bucket" {
            guard let le = sample.labels["le"], let bound = le == "+Inf" ? .infinity : Double(le) else { continue }
            byBound[bound, default: 0] += sample.value
        }
        return byBound.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

extension Report.Service {
    /// What `report` says without `--metrics-url`.
    public static let unseen = Report.Service(
        source: nil, available: false,
        note: "not measured: no running instance was asked (--metrics-url http://HOST:PORT/metrics reads one)",
        errorsByKind: [:])

    /// The service figures from two scrapes of one instance (`first` earlier): rates over the time
    /// between them. With one scrape (`first` nil) the figures are totals since the instance started.
    public static func from(_ last: MetricsScrape, since first: MetricsScrape?, source: String) -> Report.Service {
        let window = first.map { last.at.timeIntervalSince($0.at) }
        func delta(_ name: String, where filter: @escaping ([String: String]) -> Bool = { _ in true }) -> Double? {
            guard let now = last.sum(name, where: filter) else { return nil }
            return now - (first?.sum(name, where: filter) ?? 0)
        }
        var service = Report.Service(source: source, available: true, note: "", windowSeconds: window, errorsByKind: [:])
        service.note = window.map { "rates over \(String(format: "%.0f", $0)) s between two scrapes" }
            ?? "totals since the instance started (one scrape)"
        service.embeddingsTotal = last.sum(MetricNames.embeddings)
        if let window, window > 0, let embedded = delta(MetricNames.embeddings) { service.embeddingsPerSecond = embedded / window }
        // Latency quantiles from the histogram's buckets, interpolated as Prometheus does.
        var buckets = last.buckets(MetricNames.embeddingDuration)
        if let first {
            let before = Dictionary(first.buckets(MetricNames.embeddingDuration).map { ($0.bound, $0.count) }, uniquingKeysWith: +)
            buckets = buckets.map { ($0.bound, $0.count - (before[$0.bound] ?? 0)) }
        }
        service.providerLatencyP50Ms = Self.quantile(0.5, buckets).map { $0 * 1000 }
        service.providerLatencyP95Ms = Self.quantile(0.95, buckets).map { $0 * 1000 }
        let requests = delta(MetricNames.providerRequests)
        service.providerRequests = requests
        let counted = delta(MetricNames.providerRequests) { $0["outcome"] != "rate_limited" }
        let failed = delta(MetricNames.providerRequests) { !["ok", "rate_limited"].contains($0["outcome"] ?? "") }
        if let counted, counted > 0, let failed { service.errorRatio = failed / counted }
        for kind in Set(last.samples.filter { $0.name == MetricNames.embeddingErrors }.compactMap { $0.labels["kind"] }) {
            if let count = delta(MetricNames.embeddingErrors, where: { $0["kind"] == kind }), count > 0 { service.errorsByKind[kind] = count }
        }
        service.rateLimitWaits = delta(MetricNames.rateLimits)
        if let state = last.samples.last(where: { $0.name == MetricNames.circuitBreakerState })?.value {
            service.circuit = state == 0 ? "closed" : state == 1 ? "open" : "half-open"
        }
        service.cacheHits = delta(MetricNames.cacheHits)
        service.cacheMisses = delta(MetricNames.cacheMisses)
        if let hits = service.cacheHits, let misses = service.cacheMisses, hits + misses > 0 { service.cacheHitRate = hits / (hits + misses) }
        service.unchangedSkips = delta(MetricNames.unchanged)
        return service
    }

    /// The `q` quantile of cumulative `buckets`, interpolated linearly inside the bucket (as
    /// PromQL's `histogram_quantile`); nil without observations.
    static func quantile(_ q: Double, _ buckets: [(bound: Double, count: Double)]) -> Double? {
        guard let total = buckets.last?.count, total > 0 else { return nil }
        let rank = q * total
        var lower = 0.0, below = 0.0
        for (bound, count) in buckets {
            if count >= rank {
                if bound.isInfinite { return lower }
                let inBucket = count - below
                return inBucket > 0 ? lower + (bound - lower) * (rank - below) / inBucket : bound
            }
            lower = bound.isInfinite ? lower : bound
            below = count
        }
        return lower
    }
}
