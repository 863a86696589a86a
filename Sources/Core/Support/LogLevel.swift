import Logging

/// Reads a log level from `LOG_LEVEL` or a `RUST_LOG`-style filter (`warn,embed_star=info`):
/// a bare level sets the default; `embed_star=LEVEL` (or `embed-star=`) sets ours and wins.
public enum LogLevelSpec {
    public static func parse(_ text: String) -> Logger.Level? {
        var fallback: Logger.Level?
        var ours: Logger.Level?
        for directive in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !directive.isEmpty {
            if let equals = directive.firstIndex(of: "=") {
                let target = directive[..<equals].replacingOccurrences(of: "-", with: "_")
                if target == "embed_star" || target.hasPrefix("embed_star::") {
                    ours = level(String(directive[directive.index(after: equals)...]))
                }
            } else if let parsed = level(directive) {
                fallback = parsed
            }
        }
        return ours ?? fallback
    }

    public static func level(_ name: String) -> Logger.Level? {
        switch name.lowercased() {
        case "trace": .trace
        case "debug": .debug
        case "info": .info
        case "notice": .notice
        case "warn", "warning": .warning
        case "error": .error
        case "critical", "off": .critical
        default: nil
        }
    }

    /// The level the environment asks for: `LOG_LEVEL`, else `RUST_LOG`, else `info`.
    public static func fromEnvironment(_ environment: [String: String], default fallback: Logger.Level = .info) -> Logger.Level {
        if let text = environment["LOG_LEVEL"], let level = parse(text) { return level }
        if let text = environment["RUST_LOG"], let level = parse(text) { return level }
        return fallback
    }
}
