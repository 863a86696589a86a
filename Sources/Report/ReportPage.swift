import Foundation
import Mustache

/// The report as one self-contained HTML page (no scripts, fonts or images fetched): a Mustache
/// template over a view of the ``Report`` with the figures already formatted.
public enum ReportPage {
    public static func render(_ report: Report) throws -> String {
        let template = try MustacheTemplate(string: Self.template)
        return template.render(view(report))
    }

    /// One decimal, rounded down below 100%: 9,997 of 10,000 is 99.9%, never "100.0%".
    static func percent(_ value: Double?) -> String {
        guard let value else { return "–" }
        let shown = value < 1 ? (value * 1000 + 1e-9).rounded(.down) / 10 : value * 100
        return String(format: "%.1f%%", shown)
    }

    static func number(_ value: Double?, digits: Int = 0) -> String {
        guard let value else { return "–" }
        return digits == 0 ? grouped(Int(value.rounded())) : String(format: "%.\(digits)f", value)
    }

    /// "3 d 4 h", "5 h 12 min", "42 s".
    static func age(_ seconds: Double) -> String {
        let s = Int(seconds)
        if s >= 86_400 { return "\(s / 86_400) d \(s % 86_400 / 3_600) h" }
        if s >= 3_600 { return "\(s / 3_600) h \(s % 3_600 / 60) min" }
        if s >= 60 { return "\(s / 60) min \(s % 60) s" }
        return "\(s) s"
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(abs(value))
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return value < 0 ? "-" + out : out
    }

    static func view(_ report: Report) -> [String: Any] {
        let dateFormatter = ISO8601DateFormatter()
        let backlog = report.backlog, quality = report.quality, service = report.service
        var view: [String: Any] = [
            "generatedAt": dateFormatter.string(from: report.generatedAt),
            "store": report.store, "provider": report.provider, "model": report.model,
            "total": grouped(backlog.total), "embedded": grouped(backlog.embedded), "pending": grouped(backlog.pending),
            "failed": grouped(backlog.failed), "leased": grouped(backlog.leased),
            "coverage": percent(backlog.total > 0 ? Double(backlog.embedded) / Double(backlog.total) : nil),
            "scanAgrees": backlog.scanned.total == backlog.total && backlog.scanned.embedded == backlog.embedded
                && backlog.scanned.pending == backlog.pending && backlog.scanned.failed == backlog.failed,
            "scanned": "\(grouped(backlog.scanned.total)) total, \(grouped(backlog.scanned.embedded)) embedded, \(grouped(backlog.scanned.pending)) pending, \(grouped(backlog.scanned.failed)) failed",
            "unreadable": backlog.unreadable > 0 ? grouped(backlog.unreadable) : false,
            "oldestPending": backlog.oldestPendingSeconds.map(Self.age) ?? "–",
            "pendingWithoutTime": backlog.pendingWithoutTime > 0 ? grouped(backlog.pendingWithoutTime) : false,
            "models": backlog.vectorsByModel.map { ["model": $0.model, "vectors": grouped($0.vectors), "share": percent($0.share), "current": $0.current] },
            "failedCount": grouped(report.failures.failed), "retrying": grouped(report.failures.retrying),
            "failureGroups": report.failures.groups.prefix(20).map { group -> [String: Any] in
                ["reason": group.reason, "example": group.example, "count": grouped(group.count), "failed": grouped(group.failed),
                 "retrying": grouped(group.retrying), "attempts": group.maxAttempts, "repos": group.repos.joined(separator: ", ")]
            },
            "moreFailureGroups": report.failures.groups.count > 20 ? grouped(report.failures.groups.count - 20) : false,
            "service": [
                "available": service.available, "note": service.note, "source": service.source ?? "",
                "rate": number(service.embeddingsPerSecond, digits: 2), "embeddingsTotal": number(service.embeddingsTotal),
                "p50": number(service.providerLatencyP50Ms, digits: 1), "p95": number(service.providerLatencyP95Ms, digits: 1),
                "requests": number(service.providerRequests), "errorRatio": percent(service.errorRatio),
                "errors": service.errorsByKind.sorted { $0.key < $1.key }.map { ["kind": $0.key, "count": number($0.value)] },
                "rateLimits": number(service.rateLimitWaits), "circuit": service.circuit ?? "–",
                "circuitOpen": service.circuit == "open",
                "cacheHitRate": percent(service.cacheHitRate), "cacheHits": number(service.cacheHits), "cacheMisses": number(service.cacheMisses),
                "unchanged": number(service.unchangedSkips),
            ] as [String: Any],
            "vectors": [
                "checked": grouped(quality.vectors.checked),
                "dimensions": quality.vectors.dimensions.map { ["model": $0.model, "dimensions": $0.dimensions, "vectors": grouped($0.vectors)] },
                "wrongDimension": grouped(quality.vectors.wrongDimension), "zeroOrNotFinite": grouped(quality.vectors.zeroOrNotFinite),
                "normMin": number(quality.vectors.normMin, digits: 4), "normMax": number(quality.vectors.normMax, digits: 4),
                "normMean": number(quality.vectors.normMean, digits: 4), "offUnitNorm": grouped(quality.vectors.offUnitNorm),
                "staleHash": grouped(quality.vectors.staleHash), "staleHashPending": grouped(quality.vectors.staleHashPending),
                "staleExamples": quality.vectors.staleExamples.isEmpty ? false : quality.vectors.staleExamples.joined(separator: ", "),
            ] as [String: Any],
            "notes": quality.notes,
            "seed": String(quality.seed),
            "duplicates": [
                "threshold": number(quality.nearDuplicates.threshold, digits: 3), "compared": grouped(quality.nearDuplicates.compared),
                "count": grouped(quality.nearDuplicates.groups.count),
                "groups": quality.nearDuplicates.groups.prefix(20).map { ["similarity": number($0.similarity, digits: 4), "repos": $0.repos.joined(separator: ", ")] },
            ] as [String: Any],
            "outliers": [
                "compared": grouped(quality.outliers.compared), "count": grouped(quality.outliers.count),
                "mean": number(quality.outliers.meanSimilarity, digits: 3), "threshold": number(quality.outliers.threshold, digits: 3),
                "items": quality.outliers.items.map { ["repo": $0.repo, "similarity": number($0.similarityToCentroid, digits: 3), "text": $0.text] },
            ] as [String: Any],
            "map": [
                "points": grouped(report.map.points), "svg": report.map.svg,
                "variance": report.map.explainedVariance.map { percent($0) }.joined(separator: " and "),
                "languages": report.map.languages.map { ["language": $0.language, "color": $0.color, "points": grouped($0.points)] },
            ] as [String: Any],
            "timings": "scan \(number(report.timings.scanSeconds, digits: 1)) s, \(grouped(report.timings.embeddedTexts)) texts embedded in \(number(report.timings.embedSeconds, digits: 1)) s, \(number(report.timings.totalSeconds, digits: 1)) s in all",
        ]
        if let retrieval = quality.selfRetrieval {
            view["retrieval"] = [
                "queries": grouped(retrieval.queries), "top1": percent(retrieval.top1), "top10": percent(retrieval.top10),
                "worst": retrieval.worst.map { ["repo": $0.repo, "rank": grouped($0.rank), "description": $0.description, "instead": $0.foundInstead] },
            ] as [String: Any]
        }
        if let agreement = quality.modelAgreement {
            view["agreement"] = ["other": agreement.otherModel, "repos": grouped(agreement.repos), "k": agreement.k, "overlap": percent(agreement.overlap)]
        }
        return view
    }

    static let template = #"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>embed-star report — {{generatedAt}}</title>
        <style>
        :root { color-scheme: light; --ink: #1d2330; --muted: #5f6b7a; --line: #e3e7ee; --bad: #b3261e; --good: #1e7b34; }
        * { box-sizing: border-box; }
        body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0 auto; max-width: 1040px; padding: 16px; }
        h1 { font-size: 1.5em; margin: 0 0 4px; } h2 { font-size: 1.15em; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
        .meta, .note { color: var(--muted); font-size: .9em; }
        .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 8px; }
        .card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
        .card b { display: block; font-size: 1.35em; }
        table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: .92em; }
        th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
        td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        .scroll { overflow-x: auto; }
        .bad { color: var(--bad); } .good { color: var(--good); }
        .map svg { width: 100%; height: auto; border: 1px solid var(--line); border-radius: 8px; }
        .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: .88em; margin-top: 6px; }
        .legend span::before { content: ""; display: inline-block; width: 10px; height: 10px; border-radius: 50%; background: var(--c); margin-right: 5px; }
        code { font-size: .9em; overflow-wrap: anywhere; }
        .scroll td:first-child { min-width: 12em; }
        @media print { body { max-width: none; } h2 { break-after: avoid; } .map { break-inside: avoid; } }
        </style>
        </head>
        <body>
        <h1>embed-star report</h1>
        <p class="meta">{{generatedAt}} · store <code>{{store}}</code> · provider <code>{{provider}}</code> · model <code>{{model}}</code></p>

        <h2 id="backlog">Backlog and coverage</h2>
        <div class="cards">
        <div class="card">total<b>{{total}}</b></div>
        <div class="card">embedded<b>{{embedded}}</b>{{coverage}}</div>
        <div class="card">pending<b>{{pending}}</b>{{leased}} being worked on</div>
        <div class="card">oldest pending<b>{{oldestPending}}</b>waiting</div>
        <div class="card">failed<b>{{failed}}</b>until <code>retry-failed</code></div>
        </div>
        {{^scanAgrees}}<p class="note">Reading every record gave {{scanned}}: repos changed while the report ran.</p>{{/scanAgrees}}
        {{#unreadable}}<p class="bad">{{.}} records could not be read at all (see the store's log).</p>{{/unreadable}}
        {{#pendingWithoutTime}}<p class="note">{{.}} pending repos were queued before the store recorded when (not in the oldest age).</p>{{/pendingWithoutTime}}
        <div class="scroll"><table><tr><th>vectors by model</th><th class="n">repos</th><th class="n">share</th></tr>
        {{#models}}<tr><td><code>{{model}}</code>{{#current}} (current){{/current}}</td><td class="n">{{vectors}}</td><td class="n">{{share}}</td></tr>{{/models}}
        </table></div>

        <h2 id="failures">Failures</h2>
        <p>Marked failed: {{failedCount}} (<code>embed-star retry-failed</code> puts them back in the queue). Pending after a failed attempt, to be tried again: {{retrying}}.</p>
        <div class="scroll"><table><tr><th>reason</th><th class="n">repos</th><th class="n">failed</th><th class="n">retrying</th><th class="n">attempts</th><th>for example</th></tr>
        {{#failureGroups}}<tr><td><code>{{reason}}</code></td><td class="n">{{count}}</td><td class="n">{{failed}}</td><td class="n">{{retrying}}</td><td class="n">{{attempts}}</td><td>{{repos}}</td></tr>
        {{/failureGroups}}{{^failureGroups}}<tr><td colspan="6">No repo failed its last attempt.</td></tr>{{/failureGroups}}
        </table></div>
        {{#moreFailureGroups}}<p class="note">and {{.}} smaller groups (in <code>--json</code>).</p>{{/moreFailureGroups}}

        <h2 id="service">Service health</h2>
        {{#service}}
        {{#available}}
        <p class="note">From <code>{{source}}</code>: {{note}}.</p>
        <div class="cards">
        <div class="card">embeddings / s<b>{{rate}}</b>{{embeddingsTotal}} since start</div>
        <div class="card">provider p50<b>{{p50}} ms</b>p95 {{p95}} ms</div>
        <div class="card">provider errors<b>{{errorRatio}}</b>of {{requests}} calls</div>
        <div class="card">rate-limit waits<b>{{rateLimits}}</b></div>
        <div class="card">circuit<b {{#circuitOpen}}class="bad"{{/circuitOpen}}>{{circuit}}</b></div>
        <div class="card">cache hit rate<b>{{cacheHitRate}}</b>{{cacheHits}} hits, {{cacheMisses}} misses</div>
        <div class="card">unchanged skips<b>{{unchanged}}</b>no provider call</div>
        </div>
        <table>{{#errors}}<tr><td>{{kind}}</td><td class="n">{{count}}</td></tr>{{/errors}}</table>
        {{/available}}
        {{^available}}<p class="note">Service figures {{note}}.</p>{{/available}}
        {{/service}}

        <h2 id="quality">Embedding quality</h2>
        <p class="note">Samples are drawn by a seeded hash of the repo id (seed {{seed}}): two reports of the same data sample the same repos.</p>
        {{#retrieval}}
        <h3>Self-retrieval</h3>
        <div class="cards">
        <div class="card">found first<b>{{top1}}</b>of {{queries}} descriptions</div>
        <div class="card">found in the top 10<b>{{top10}}</b></div>
        </div>
        <p>Each sampled repo's description alone, embedded as a search query, should find its own repo. The worst misses:</p>
        <div class="scroll"><table><tr><th>repo</th><th class="n">rank</th><th>description</th><th>found first instead</th></tr>
        {{#worst}}<tr><td>{{repo}}</td><td class="n">{{rank}}</td><td>{{description}}</td><td>{{instead}}</td></tr>{{/worst}}
        </table></div>
        {{/retrieval}}
        {{#vectors}}
        <h3>Vectors</h3>
        <p>{{checked}} vectors read. Norms {{normMin}} to {{normMax}} (mean {{normMean}}); {{offUnitNorm}} off the unit length; {{zeroOrNotFinite}} zero or not finite; {{wrongDimension}} of the wrong length.
        {{staleHash}} vectors of the current model no longer match their repo's text ({{staleHashPending}} of them already queued again){{#staleExamples}}: {{.}}{{/staleExamples}}.</p>
        <table><tr><th>model</th><th class="n">dimensions</th><th class="n">vectors</th></tr>
        {{#dimensions}}<tr><td><code>{{model}}</code></td><td class="n">{{dimensions}}</td><td class="n">{{vectors}}</td></tr>{{/dimensions}}
        </table>
        {{/vectors}}
        {{#duplicates}}
        <h3>Near-duplicates</h3>
        <p>{{count}} groups of repos with different names whose vectors are at least {{threshold}} alike, among {{compared}} sampled repos.</p>
        <div class="scroll"><table><tr><th class="n">similarity</th><th>repos</th></tr>
        {{#groups}}<tr><td class="n">{{similarity}}</td><td>{{repos}}</td></tr>{{/groups}}
        </table></div>
        {{/duplicates}}
        {{#outliers}}
        <h3>Outliers</h3>
        <p>{{count}} of {{compared}} vectors are far from all others: similarity to the centroid below {{threshold}} (mean {{mean}}).</p>
        <div class="scroll"><table><tr><th>repo</th><th class="n">similarity</th><th>text embedded</th></tr>
        {{#items}}<tr><td>{{repo}}</td><td class="n">{{similarity}}</td><td><code>{{text}}</code></td></tr>{{/items}}
        </table></div>
        {{/outliers}}
        {{#agreement}}
        <h3>Model change</h3>
        <p>{{repos}} repos holding <code>{{other}}</code>'s vector were embedded again with the current model: the two agree on {{overlap}} of each repo's {{k}} nearest neighbours.</p>
        {{/agreement}}
        {{#notes}}<p class="note">{{.}}</p>{{/notes}}

        <h2 id="map">Map of the stars</h2>
        {{#map}}
        <p class="note">{{points}} sampled repos on their two principal axes ({{variance}} of the variance); hover a point for its name.</p>
        <div class="map">{{{svg}}}</div>
        <div class="legend">{{#languages}}<span style="--c: {{color}}">{{language}} ({{points}})</span>{{/languages}}</div>
        {{/map}}

        <p class="meta">{{timings}}.</p>
        </body>
        </html>
        """#
}
