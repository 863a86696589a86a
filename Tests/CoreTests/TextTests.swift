import EmbedStarConfig
import EmbedStarCore
import Testing

private let repo = Repo(
    id: RepoID("repo:1"), fullName: "toml-rs/toml", description: "A TOML parser\nfor Rust", stars: 1234,
    language: "Rust", owner: Repo.Owner(login: "toml-rs"), topics: ["toml", "parser"])

@Suite struct TextTests {
    @Test func defaultTemplateUsesNameDescriptionLanguageTopicsOwnerButNotStars() throws {
        let text = try TextBuilder().text(for: repo)
        #expect(text == "toml-rs/toml\nA TOML parser for Rust\nLanguage: Rust\nTopics: toml, parser\nOwner: toml-rs")
        var starred = repo
        starred.stars += 1000
        #expect(try TextBuilder().text(for: starred) == text)
    }

    @Test func linesWithOnlyEmptyFieldsAreDropped() throws {
        let bare = Repo(id: RepoID("repo:2"), fullName: "a/b")
        #expect(try TextBuilder().text(for: bare) == "a/b")
    }

    @Test func customTemplate() throws {
        let builder = try TextBuilder(template: "{name} ({language}) - {stars} stars")
        #expect(builder.text(for: repo) == "toml (Rust) - 1234 stars")
    }

    @Test func unknownFieldIsAConfigError() {
        #expect(throws: ConfigError.self) { try TextBuilder(template: "{fullname}") }
    }

    @Test func truncationEndsAtAWordBoundaryWithinBudget() {
        let text = "alpha beta gamma delta epsilon zeta eta theta"
        let cut = TextBuilder.truncate(text, toTokens: 6)
        #expect(TokenEstimator.estimate(cut) <= 6)
        #expect(text.hasPrefix(cut))
        #expect(cut.split(separator: " ").allSatisfy { text.split(separator: " ").contains($0) })
        #expect(cut.count > 0)
    }

    @Test func truncationNeverSplitsACharacter() {
        let text = String(repeating: "日本語のテキスト👩‍👩‍👧 ", count: 50)
        for budget in [1, 2, 3, 7, 30] {
            let cut = TextBuilder.truncate(text, toTokens: budget)
            #expect(TokenEstimator.estimate(cut) <= budget)
            #expect(text.hasPrefix(cut))
            #expect(Array(cut.utf8) == Array(String(decoding: Array(cut.utf8), as: UTF8.self).utf8))
            #expect(!cut.isEmpty)
        }
    }

    @Test func textWithinBudgetIsUntouched() {
        #expect(TextBuilder.truncate("short text", toTokens: 100) == "short text")
    }

    @Test func builderAppliesTheBudget() throws {
        var long = repo
        long.description = String(repeating: "word ", count: 2000)
        let text = try TextBuilder(maxTokens: 50).text(for: long)
        #expect(TokenEstimator.estimate(text) <= 50)
        #expect(text.hasPrefix("toml-rs/toml\nword"))
    }

    @Test func estimatorCountsNonASCIIConservatively() {
        #expect(TokenEstimator.estimate("hello world") == 4)
        #expect(TokenEstimator.estimate("日本語") == 3)
        #expect(TokenEstimator.estimate("") == 0)
    }

    @Test func contentHashDependsOnTextAndModel() {
        let a = ContentHash.make(text: "x", model: "mock/a@8")
        #expect(a == ContentHash.make(text: "x", model: "mock/a@8"))
        #expect(a != ContentHash.make(text: "y", model: "mock/a@8"))
        #expect(a != ContentHash.make(text: "x", model: "mock/b@8"))
        #expect(a.count == 64)
    }
}

@Suite struct PrefixTests {
    @Test func theModelsPrefixesApplyUnlessYAMLOverridesThem() throws {
        let nomic = ModelInfo(name: "nomic-embed-text", maxBatchSize: 8, prefixes: TaskPrefixes(query: "search_query: ", document: "search_document: "))
        #expect(TaskPrefixes.resolve(model: nomic, query: nil, document: nil) == nomic.prefixes)
        #expect(TaskPrefixes.resolve(model: ModelInfo(name: "e5", maxBatchSize: 8), query: "query: ", document: "passage: ")
            == TaskPrefixes(query: "query: ", document: "passage: "))
        #expect(TaskPrefixes.resolve(model: ModelInfo(name: "plain", maxBatchSize: 8), query: nil, document: nil) == .none)
        // A quoted empty string in YAML switches a default off.
        let config = try ConfigLoader.load(yaml: "provider: ollama\nstore: mock\ntext:\n  document_prefix: ''\n", source: "p.yaml")
        #expect(config.settings.text.prefixes(model: nomic).document == "")
        #expect(config.settings.text.prefixes(model: nomic).query == "search_query: ")
    }

    @Test func fixedPrefixesCountInTheBudgetAndIdentityAndRefuseAnotherConfiguredOne() throws {
        let e5 = TaskPrefixes(query: "query: ", document: "passage: ")
        let fixed = ModelInfo(name: "e5", dimensions: 4, maxBatchSize: 8, maxInputTokens: 12, prefixes: e5, prefixesFixed: true)
        let document = try DocumentText(providerName: "local", model: fixed, text: TextConfiguration())
        let repo = Repo(id: RepoID("repo:1"), fullName: "a/b", description: String(repeating: "word ", count: 50))
        let text = document.text(for: repo)
        #expect(text.hasPrefix("passage: "))
        #expect(TokenEstimator.estimate(text) <= 12)  // the prefix is paid from the budget
        #expect(document.modelIdentity != ModelIdentity.make(provider: "local", model: fixed))
        var text2 = TextConfiguration()
        text2.queryPrefix = "search: "
        do {
            _ = try DocumentText(providerName: "local", model: fixed, text: text2)
            Issue.record("expected a configuration error")
        } catch {
            #expect(error.path == "text.query_prefix")
            #expect(error.message.contains("always gets 'query: '"))
        }
        // Not fixed: the same setting is an override.
        var free = fixed
        free.prefixesFixed = false
        #expect(try DocumentText(providerName: "ollama", model: free, text: text2).query("x") == "search: x")
    }
}
