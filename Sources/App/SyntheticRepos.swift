import EmbedStarCore
import Foundation

/// Realistic made-up GitHub repos: varied languages, topics, owners and descriptions, the same
/// for the same seed. For demos, tests and benchmarks (`embed-star seed`).
public enum SyntheticRepos {
    private struct Domain {
        var topics: [String]
        var nouns: [String]
        var phrases: [String]
    }

    private static let languages: [(String, Double)] = [
        ("Rust", 0.14), ("Python", 0.18), ("TypeScript", 0.14), ("Go", 0.11), ("Swift", 0.07), ("C++", 0.06),
        ("JavaScript", 0.08), ("Java", 0.05), ("Kotlin", 0.03), ("Zig", 0.02), ("Haskell", 0.02), ("C", 0.04),
    ]

    private static let domains: [Domain] = [
        Domain(topics: ["parser", "toml", "yaml", "json", "serialization"], nouns: ["parser", "serializer", "decoder", "format library"],
               phrases: ["A small %@ for TOML files", "Fast, zero-copy %@ for JSON", "Streaming YAML %@ with good error messages", "A spec-compliant %@ with no dependencies"]),
        Domain(topics: ["database", "sql", "orm", "postgres", "sqlite"], nouns: ["query builder", "ORM", "migration tool", "connection pool"],
               phrases: ["Type-safe %@ for PostgreSQL", "A lightweight %@ for SQLite", "An embedded key-value %@ with transactions", "Async %@ for relational databases"]),
        Domain(topics: ["machine-learning", "embeddings", "llm", "nlp", "vector-search"], nouns: ["inference engine", "tokenizer", "vector index", "embedding server"],
               phrases: ["Run transformer models locally with a tiny %@", "A fast %@ for semantic search", "Quantized %@ for CPUs", "Retrieval-augmented generation with a simple %@"]),
        Domain(topics: ["web", "http", "server", "framework", "rest-api"], nouns: ["web framework", "HTTP client", "router", "middleware kit"],
               phrases: ["A minimal %@ built on async I/O", "Batteries-included %@ for REST APIs", "An ergonomic %@ with typed routes", "High-performance %@ with HTTP/2"]),
        Domain(topics: ["cli", "terminal", "tui", "shell", "productivity"], nouns: ["command-line tool", "terminal UI", "shell prompt", "file finder"],
               phrases: ["A blazing fast %@ written for humans", "A friendly %@ with fuzzy matching", "Modern replacement for a classic %@", "Configurable %@ with themes"]),
        Domain(topics: ["devops", "kubernetes", "docker", "monitoring", "observability"], nouns: ["operator", "metrics exporter", "log shipper", "deployment tool"],
               phrases: ["A Kubernetes %@ for stateful apps", "Prometheus %@ for everything", "A tiny %@ for container logs", "GitOps %@ with drift detection"]),
        Domain(topics: ["game-engine", "graphics", "gamedev", "rendering", "physics"], nouns: ["game engine", "renderer", "physics engine", "ECS"],
               phrases: ["A data-driven %@ for 2D games", "Real-time %@ using Vulkan", "Deterministic %@ for multiplayer games", "A hobby %@ with hot reloading"]),
        Domain(topics: ["security", "cryptography", "tls", "authentication", "passwords"], nouns: ["crypto library", "password manager", "TLS stack", "auth server"],
               phrases: ["An audited %@ with a small API", "A self-hosted %@", "Memory-safe %@", "OAuth2 and OIDC %@"]),
        Domain(topics: ["compiler", "programming-language", "interpreter", "wasm", "jit"], nouns: ["compiler", "interpreter", "bytecode VM", "language server"],
               phrases: ["A toy %@ for a Lisp dialect", "An optimizing %@ targeting WebAssembly", "A tiny %@ written in a weekend", "Incremental %@ with great diagnostics"]),
        Domain(topics: ["mobile", "ios", "android", "ui", "design-system"], nouns: ["UI toolkit", "component library", "animation library", "navigation library"],
               phrases: ["Declarative %@ for mobile apps", "Accessible %@ with dark mode", "A composable %@", "Cross-platform %@ with native widgets"]),
    ]

    private static let owners = ["acme", "octo-labs", "rustacean", "pydev", "gopherco", "swiftly", "nullptr", "bytecraft",
                                 "datafox", "cloudnine", "tinkerer", "openforge", "mlcraft", "webwright", "termfolk", "kernelkit"]

    private static let nameParts = ["nano", "swift", "hyper", "tiny", "turbo", "micro", "open", "rapid", "deep", "flux", "iron",
                                    "quill", "atlas", "comet", "ember", "prism", "nimbus", "orbit", "pulse", "vertex"]

    /// `count` repos, the same for the same `seed`; ids are `repo:syn<N>`.
    public static func generate(count: Int, seed: UInt64 = 1) -> [Repo] {
        var random = SeededRandom(seed: seed)
        let start = Date(timeIntervalSince1970: 1_300_000_000)
        return (0..<count).map { number in
            let domain = random.pick(domains)
            let language = pickLanguage(&random)
            let owner = random.pick(owners) + (random.nextUnit() < 0.5 ? "" : "-\(random.next() % 90 + 10)")
            let noun = random.pick(domain.nouns)
            let name = "\(random.pick(nameParts))-\(noun.split(separator: " ").last!.lowercased())-\(number)"  // nouns are non-empty
            let description: String? = random.nextUnit() < 0.08 ? nil :
                random.pick(domain.phrases).replacingOccurrences(of: "%@", with: noun) + " in \(language)."
            var topics = Set<String>()
            for _ in 0..<Int(random.next() % 5) { topics.insert(random.pick(domain.topics)) }
            let created = start.addingTimeInterval(Double(random.next() % 400_000_000))
            return Repo(
                id: RepoID("repo:syn\(number)"),
                githubID: 10_000_000 + Int64(number),
                name: name,
                fullName: "\(owner)/\(name)",
                description: description,
                url: "https://github.com/\(owner)/\(name)",
                stars: Int(pow(10, random.nextUnit() * 5)),
                language: random.nextUnit() < 0.05 ? nil : language,
                owner: Repo.Owner(login: owner, avatarURL: "https://avatars.githubusercontent.com/u/\(1000 + number)"),
                isPrivate: random.nextUnit() < 0.02,
                topics: topics.sorted(),
                createdAt: created,
                updatedAt: created.addingTimeInterval(Double(random.next() % 50_000_000))
            )
        }
    }

    private static func pickLanguage(_ random: inout SeededRandom) -> String {
        var roll = random.nextUnit() * languages.reduce(0) { $0 + $1.1 }
        for (language, weight) in languages {
            roll -= weight
            if roll < 0 { return language }
        }
        return languages[0].0
    }

    /// The repos as a JSON array of collector records, one record per line.
    public static func json(_ repos: [Repo]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data("[\n".utf8)
        for (position, repo) in repos.enumerated() {
            data.append(try encoder.encode(repo.jsonValue))
            data.append(contentsOf: Array((position + 1 < repos.count ? ",\n" : "\n").utf8))
        }
        data.append(contentsOf: Array("]\n".utf8))
        return data
    }

    /// The repos as GitHub's API returns starred repositories (`gh api user/starred`), what
    /// `embed-star import` reads.
    public static func githubJSON(_ repos: [Repo]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let dates = Date.ISO8601FormatStyle()
        var data = Data("[\n".utf8)
        for (position, repo) in repos.enumerated() {
            var fields: [String: JSONValue] = [
                "id": .int(repo.githubID ?? Int64(position + 1)), "name": .string(repo.name), "full_name": .string(repo.fullName),
                "stargazers_count": .int(Int64(repo.stars)), "private": .bool(repo.isPrivate), "topics": .array(repo.topics.map(JSONValue.string)),
                "description": repo.description.map(JSONValue.string) ?? .null, "language": repo.language.map(JSONValue.string) ?? .null,
            ]
            if let url = repo.url { fields["html_url"] = .string(url) }
            if let owner = repo.owner {
                fields["owner"] = .object(["login": .string(owner.login), "avatar_url": owner.avatarURL.map(JSONValue.string) ?? .null])
            }
            if let created = repo.createdAt { fields["created_at"] = .string(created.formatted(dates)) }
            if let updated = repo.updatedAt { fields["updated_at"] = .string(updated.formatted(dates)) }
            data.append(try encoder.encode(JSONValue.object(fields)))
            data.append(contentsOf: Array((position + 1 < repos.count ? ",\n" : "\n").utf8))
        }
        data.append(contentsOf: Array("]\n".utf8))
        return data
    }
}
