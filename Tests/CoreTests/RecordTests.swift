import EmbedStarCore
import Foundation
import Logging
import Testing

private func json(_ text: String) throws -> JSONValue {
    try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
}

@Suite struct RecordTests {
    @Test func missingOptionalAndUnknownFieldsAreFine() throws {
        let value = try json(#"{"id": "repo:abc", "full_name": "a/b", "surprise": {"x": 1}, "description": null}"#)
        let repo = try Repo.decode(value, fallbackName: "#0").get()
        #expect(repo.id == RepoID("repo:abc"))
        #expect(repo.name == "b")
        #expect(repo.description == nil)
        #expect(repo.topics == [])
        #expect(repo.stars == 0)
    }

    @Test func fullRecordRoundTrips() throws {
        let value = try json(#"""
            {"id": "repo:1", "github_id": 42, "name": "b", "full_name": "a/b", "description": "d", "url": "https://x",
             "stars": "17", "language": "Go", "owner": {"login": "a", "avatar_url": "https://y"}, "is_private": true,
             "created_at": "2020-01-02T03:04:05Z", "updated_at": "2021-01-02T03:04:05.123Z", "topics": ["t1", "t2"]}
            """#)
        let repo = try Repo.decode(value, fallbackName: "#0").get()
        #expect(repo.stars == 17)
        #expect(repo.githubID == 42)
        #expect(repo.owner?.login == "a")
        #expect(repo.isPrivate)
        #expect(repo.updatedAt != nil)
        #expect(try Repo.decode(repo.jsonValue, fallbackName: "#0").get() == repo)
    }

    @Test func wrongTypeRejectsTheRecordNamingTheField() throws {
        let error = try #require(Repo.decode(try json(#"{"id": "repo:9", "full_name": "a/b", "topics": "rust"}"#), fallbackName: "#3").failureValue)
        #expect(error.record == "repo:9")
        #expect(error.field == "topics")
        #expect(error.description.contains("expected an array of strings, got string"))
    }

    @Test func recordWithoutIdIsNamedByPosition() throws {
        let error = try #require(Repo.decode(try json(#"{"full_name": "a/b"}"#), fallbackName: "#7 of repos.json").failureValue)
        #expect(error.record == "#7 of repos.json")
        #expect(error.field == "id")
    }

    @Test func idIsDerivedFromGithubIdOrPrefixed() throws {
        #expect(try Repo.decode(try json(#"{"github_id": 5, "full_name": "a/b"}"#), fallbackName: "").get().id == RepoID("repo:5"))
        #expect(try Repo.decode(try json(#"{"id": "xyz", "full_name": "a/b"}"#), fallbackName: "").get().id == RepoID("repo:xyz"))
    }

    @Test func badDateIsReported() throws {
        let error = try #require(Repo.decode(try json(#"{"id": "r:1", "full_name": "a/b", "updated_at": "yesterday"}"#), fallbackName: "").failureValue)
        #expect(error.field == "updated_at")
    }

    @Test func logLevelFromEnvironment() {
        #expect(LogLevelSpec.fromEnvironment([:]) == .info)
        #expect(LogLevelSpec.fromEnvironment(["LOG_LEVEL": "debug"]) == .debug)
        #expect(LogLevelSpec.fromEnvironment(["RUST_LOG": "warn,embed_star=trace"]) == .trace)
        #expect(LogLevelSpec.fromEnvironment(["RUST_LOG": "warn,hyper=debug"]) == .warning)
        #expect(LogLevelSpec.fromEnvironment(["LOG_LEVEL": "error", "RUST_LOG": "debug"]) == .error)
    }

    @Test func batcherRespectsCountAndTokens() {
        #expect(Batcher.split(costs: [1, 1, 1, 1, 1], maxCount: 2, maxTokens: nil) == [0..<2, 2..<4, 4..<5])
        #expect(Batcher.split(costs: [3, 3, 3, 10, 1], maxCount: 10, maxTokens: 7) == [0..<2, 2..<3, 3..<4, 4..<5])
        #expect(Batcher.split(costs: [], maxCount: 3, maxTokens: 5) == [])
    }

    @Test func validatorCatchesBadVectors() {
        let validator = VectorValidator()
        let good: [Float] = [0.6, 0.8, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3]
        #expect(validator.problem(with: good, expectedDimensions: 8) == nil)
        #expect(validator.problem(with: good, expectedDimensions: 9)?.contains("8 dimensions, expected 9") == true)
        #expect(validator.problem(with: [0.1, .nan], expectedDimensions: nil)?.contains("NaN") == true)
        #expect(validator.problem(with: [0, 0], expectedDimensions: nil)?.contains("zero norm") == true)
        #expect(validator.problem(with: [1, 0, 0, 0, 0, 0, 0, 0], expectedDimensions: nil)?.contains("mostly zeros") == true)
        #expect(validator.problem(with: [], expectedDimensions: nil) == "empty vector")
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// The bulk JSON parser gives what `JSONDecoder` gives, and refuses what it refuses.
struct JSONParseTests {
    @Test func agreesWithJSONDecoder() throws {
        let texts = [
            #"{"id": 12, "full_name": "a/b", "description": null, "stars": 1234567890123, "score": -0.5e-3, "private": false, "ok": true}"#,
            #"[1, 2.5, -0, 1e3, 2.0, 9223372036854775807, 9223372036854775808, "x", [], {}, [[{"k": []}]]]"#,
            #"{"text": "tab\tnew\nquote\" back\\ slash\/ \u00e9 \u65e5\u672c \ud83d\udc4d\ud83c\udffd", "empty": ""}"#,
            "  {\"ünï\" : \"日本語-репо 👍🏽 \u{2028}\", \"dup\": 1, \"dup\": 2 }  ",
            "\"just a string\"", "null", "-12", "0.1",
        ]
        for text in texts {
            let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(try JSONValue.parse(text) == expected, "\(text)")
        }
        #expect(try JSONValue.parse(#"{"n": 9223372036854775808}"#)["n"] == .double(9223372036854775808))
    }

    @Test func refusesWhatIsNotJSON() {
        for text in ["", "{", "[1,]", "{\"a\" 1}", "{\"a\": 1,}", "tru", "01", "1.", "-", ".5", "\"unterminated", "\"bad \\x escape\"",
                     "\"lone \\ud83d surrogate\"", "\"raw \u{01} control\"", "[1] 2", "{'a': 1}", "1e999"] {
            #expect(throws: JSONValue.ParseError.self, "\(text)") { try JSONValue.parse(text) }
        }
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(deep) }
    }
}
