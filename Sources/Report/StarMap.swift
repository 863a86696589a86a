import Foundation
import EmbedStarCore

/// The map of the stars: the sample's vectors projected on their two principal axes (PCA by
/// power iteration), drawn as an inline SVG, one point per repo, coloured by language.
enum StarMapProjection {
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#2f4b7c"]
    static let otherColor = "#b8b8b8"
    static let width = 960.0, height = 640.0, margin = 16.0

    static func make(_ sample: [ReportBuilder.Sampled], seed: UInt64) -> Report.StarMap {
        guard sample.count >= 2, let columns = sample.first?.vector.count, columns >= 2 else {
            return Report.StarMap(points: 0, method: "pca", explainedVariance: [], languages: [], svg: "")
        }
        let points = sample.filter { $0.vector.count == columns }
        // Centre the data.
        var mean = [Double](repeating: 0, count: columns)
        for point in points { for i in 0..<columns { mean[i] += Double(point.vector[i]) } }
        for i in 0..<columns { mean[i] /= Double(points.count) }
        let data = points.map { point in (0..<columns).map { Double(point.vector[$0]) - mean[$0] } }
        let totalVariance = data.reduce(0.0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }
        var generator = SeededRandom(seed: seed)
        var axes: [[Double]] = []
        var variances: [Double] = []
        for _ in 0..<2 {
            var axis = (0..<columns).map { _ in Double.random(in: -1...1, using: &generator) }
            var variance = 0.0
            for _ in 0..<50 {
                // X^T (X axis), with earlier axes projected out.
                var next = [Double](repeating: 0, count: columns)
                for row in data {
                    let projection = zip(row, axis).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0..<columns { next[i] += projection * row[i] }
                }
                for previous in axes {
                    let overlap = zip(next, previous).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0..<columns { next[i] -= overlap * previous[i] }
                }
                let length = next.reduce(0) { $0 + $1 * $1 }.squareRoot()
                guard length > 0 else { break }
                let converged = abs(length - variance) <= 1e-6 * length
                variance = length
                axis = next.map { $0 / length }
                if converged { break }
            }
            axes.append(axis)
            variances.append(variance)
        }
        let coordinates = data.map { row in axes.map { axis in zip(row, axis).reduce(0) { $0 + $1.0 * $1.1 } } }

        // Colours: the ten most common languages, the rest grey.
        var counts: [String: Int] = [:]
        for point in points { counts[point.language ?? "(none)", default: 0] += 1 }
        let ranked = counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        var colors: [String: String] = [:]
        for (index, entry) in ranked.prefix(palette.count).enumerated() { colors[entry.key] = palette[index] }
        var legend = ranked.prefix(palette.count).map { Report.LanguageColor(language: $0.key, color: colors[$0.key]!, points: $0.value) }
        let others = ranked.dropFirst(palette.count).reduce(0) { $0 + $1.value }
        if others > 0 { legend.append(Report.LanguageColor(language: "other", color: otherColor, points: others)) }

        let xs = coordinates.map { $0[0] }, ys = coordinates.map { $0[1] }
        let (minX, maxX, minY, maxY) = (xs.min()!, xs.max()!, ys.min()!, ys.max()!)  // points.count >= 2
        func scale(_ value: Double, _ low: Double, _ high: Double, _ size: Double) -> Double {
            high > low ? margin + (value - low) / (high - low) * (size - 2 * margin) : size / 2
        }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" \
            aria-label="Map of \(points.count) repos by meaning" class="star-map">
            <rect width="100%" height="100%" fill="#fbfbfd"/>

            """
        for (point, xy) in zip(points, coordinates) {
            let x = scale(xy[0], minX, maxX, width), y = height - scale(xy[1], minY, maxY, height)
            let language = point.language ?? "(none)"
            svg += "<circle class=\"point\" cx=\"\(String(format: "%.1f", x))\" cy=\"\(String(format: "%.1f", y))\" r=\"3\" fill=\"\(colors[language] ?? otherColor)\">"
            svg += "<title>\(escape(point.name)) (\(escape(language)))</title></circle>\n"
        }
        svg += "</svg>"
        return Report.StarMap(points: points.count, method: "pca", explainedVariance: variances.map { totalVariance > 0 ? $0 / totalVariance : 0 },
                              languages: legend, svg: svg)
    }

    static func escape(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
