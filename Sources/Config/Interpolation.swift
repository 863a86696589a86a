import Foundation

/// Replaces `${NAME}`, `${NAME:-default}` (default when unset or empty) and `${NAME-default}`
/// (default when unset) in every scalar; `$$` writes a literal `$`. A `${NAME}` with no default
/// and no value becomes ``ConfigNode/Value/missingVariable(_:)``, an error only where it is read,
/// so an unused plugin's missing API key does not stop another plugin from running.
///
/// When `NAME` is unset and `NAME_FILE` is set, the value is the content of the file it names,
/// with one trailing newline removed (the Docker and Kubernetes secrets convention:
/// `DB_PASS_FILE=/run/secrets/db_pass`). Errors name the file, never its content.
public enum Interpolation {
    public static func apply(_ node: ConfigNode, environment: [String: String], path: String = "") throws(ConfigError) -> ConfigNode {
        switch node.value {
        case .scalar(let text, let quoted):
            guard text.contains("$") else { return node }
            return try substitute(text, quoted: quoted, location: node.location, path: path, environment: environment)
        case .mapping(let entries):
            var result: [ConfigEntry] = []
            for entry in entries {
                var copy = entry
                copy.value = try apply(entry.value, environment: environment, path: path.isEmpty ? entry.key : "\(path).\(entry.key)")
                result.append(copy)
            }
            return ConfigNode(.mapping(result), location: node.location)
        case .sequence(let items):
            var result: [ConfigNode] = []
            for (index, item) in items.enumerated() {
                result.append(try apply(item, environment: environment, path: "\(path)[\(index)]"))
            }
            return ConfigNode(.sequence(result), location: node.location)
        case .null, .missingVariable:
            return node
        }
    }

    private static func substitute(
        _ text: String, quoted: Bool, location: ConfigLocation?, path: String, environment: [String: String]
    ) throws(ConfigError) -> ConfigNode {
        var output = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            output += rest[..<dollar]
            let afterDollar = rest.index(after: dollar)
            if afterDollar < rest.endIndex, rest[afterDollar] == "$" {
                output += "$"
                rest = rest[rest.index(after: afterDollar)...]
                continue
            }
            guard afterDollar < rest.endIndex, rest[afterDollar] == "{" else {
                output += "$"
                rest = rest[afterDollar...]
                continue
            }
            let bodyStart = rest.index(after: afterDollar)
            guard let close = rest[bodyStart...].firstIndex(of: "}") else {
                throw ConfigError(location: location, path: path, message: "unterminated '${' in '\(text)'")
            }
            let body = rest[bodyStart..<close]
            rest = rest[rest.index(after: close)...]
            let (name, fallback, emptyCountsAsUnset) = split(body)
            guard isValidName(name) else {
                throw ConfigError(location: location, path: path, message: "'${\(body)}' is not a valid variable reference")
            }
            let value = try lookup(name, in: environment, location: location, path: path)
            if let value, !(emptyCountsAsUnset && value.isEmpty) {
                output += value
            } else if let fallback {
                output += fallback
            } else if text == "${\(body)}" {
                return ConfigNode(.missingVariable(name), location: location)
            } else {
                throw ConfigError(location: location, path: path, message: "environment variable \(name) is not set (write ${\(name):-default} to give a default)")
            }
        }
        output += rest
        return ConfigNode(ConfigNode.scalarValue(output, quoted: quoted), location: location)
    }

    /// `NAME`, or else the content of the file `NAME_FILE` names.
    static func lookup(_ name: String, in environment: [String: String], location: ConfigLocation?, path: String) throws(ConfigError) -> String? {
        if let value = environment[name] { return value }
        guard let file = environment[name + "_FILE"], !file.isEmpty else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw ConfigError(location: location, path: path, message: "\(name)_FILE names \(file), which cannot be read (\(reason))")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw ConfigError(location: location, path: path, message: "\(name)_FILE names \(file), which is not UTF-8 text")
        }
        if text.last?.isNewline == true { text.removeLast() }  // "\n", or "\r\n" (one Character)
        return text
    }

    private static func split(_ body: Substring) -> (String, String?, Bool) {
        if let range = body.range(of: ":-") {
            return (String(body[..<range.lowerBound]), String(body[range.upperBound...]), true)
        }
        if let dash = body.firstIndex(of: "-") {
            return (String(body[..<dash]), String(body[body.index(after: dash)...]), false)
        }
        return (String(body), nil, false)
    }

    private static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || CharacterSet.letters.contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || CharacterSet.alphanumerics.contains($0) && $0.isASCII }
    }
}

/// Reads a `.env` file: `KEY=value` lines, optional `export`, `#` comments, quoted values.
public enum DotEnv {
    public static func parse(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                if first == "\"" { value = value.replacingOccurrences(of: "\\n", with: "\n") }
            } else if let hash = value.range(of: " #") {
                value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            if !key.isEmpty { result[key] = value }
        }
        return result
    }
}
