import EmbedStarCore

/// HELP lines for the exposition: swift-metrics has no place for help text, so it is added to
/// the registry's output by name. The texts come from the modules that emit the metrics.
enum MetricHelp {
    /// `exposition` with a `# HELP` line before each `# TYPE` line, from `help` (Core's and the
    /// plugins' descriptions, ``PluginRegistry/metricHelp``).
    static func annotate(_ exposition: String, help: [String: String]) -> String {
        var output = ""
        output.reserveCapacity(exposition.utf8.count + 2048)
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).split(separator: " ").first.map(String.init) ?? ""
                output += "# HELP \(name) \(help[name] ?? "embed-star metric \(name).")\n"
            }
            output += line
            output += "\n"
        }
        if output.hasSuffix("\n\n") { output.removeLast() }
        return output
    }
}
