import Yams

/// A configuration problem, with where it was written and which key it concerns.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var location: ConfigLocation?
    /// The dotted key path, such as `providers.ollama.model`.
    public var path: String?
    public var message: String

    public init(location: ConfigLocation?, path: String?, message: String) {
        self.location = location
        self.path = path
        self.message = message
    }

    public var description: String {
        var parts: [String] = []
        if let location { parts.append(location.description) }
        if let path, !path.isEmpty { parts.append(path) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }

    static func syntax(_ error: YamlError, source: String) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { "\(problem) \($0.text)" } ?? problem
            return ConfigError(
                location: ConfigLocation(source: source, line: mark.line, column: mark.column),
                path: nil, message: "invalid YAML: \(detail)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(
                location: ConfigLocation(source: source, line: context.mark.line, column: context.mark.column),
                path: nil, message: "duplicate keys: \(duplicates.joined(separator: ", "))")
        default:
            return ConfigError(location: ConfigLocation(source: source), path: nil, message: "invalid YAML: \(error)")
        }
    }
}

/// The closest candidate to a mistyped name, if one is close enough to be a likely typo.
public func closestMatch(to word: String, in candidates: some Sequence<String>) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    return best.1 <= max(2, word.count / 3) ? best.0 : nil
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
