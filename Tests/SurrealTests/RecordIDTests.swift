import EmbedStarCore
import Foundation
import SurrealClient
import Testing

/// Record ids as embed-star names repos (`RepoID`) must read back as the very key SurrealDB
/// holds: a write to a key that parsed into another kind lands nowhere.
struct RecordIDTests {
    @Test(arguments: [
        (SurrealValue.int(123), "repo:123"),
        (.string("123"), "repo:⟨123⟩"),
        (.string("-5"), "repo:⟨-5⟩"),
        (.string("1.5"), "repo:⟨1.5⟩"),
        (.string("my-project"), "repo:my-project"),
        (.string("a b"), "repo:⟨a b⟩"),
        (.string("⟨x⟩"), "repo:⟨⟨x⟩⟩"),
        (.string("u'abc'"), "repo:⟨u'abc'⟩"),
        (.uuid(UUID(uuidString: "0B1A8C5E-8D5B-4F0E-9B1D-2F3C4D5E6F70")!), "repo:u'0b1a8c5e-8d5b-4f0e-9b1d-2f3c4d5e6f70'"),
        (.array([.string("gh"), .int(7)]), "repo:['gh', 7]"),
        (.object(["src": .string("it's"), "gh": .int(7), "a b": .bool(true)]), "repo:{'a b': true, gh: 7, src: 'it\\'s'}"),
    ])
    func readsBackWhatItWrites(_ key: SurrealValue, _ text: String) throws {
        let id = RecordID(table: "repo", id: key)
        #expect(id.plainDescription == text)
        #expect(RecordID(parsing: text) == id, "\(text) must read back as \(key)")
    }

    /// Keys of every kind, nested, from a seed: each one's text reads back as the same key.
    @Test(arguments: 1...8)
    func randomKeysRoundTrip(_ seed: UInt64) throws {
        var random = SeededRandom(seed: seed)
        func text() -> String {
            let alphabet = Array("ab9_-.' \\⟨⟩{}[]:,é0")
            return String((0..<Int(random.next() % 6)).map { _ in random.pick(alphabet) })
        }
        func value(_ depth: Int) -> SurrealValue {
            switch random.next() % (depth > 2 ? 5 : 8) {
            case 0: return .int(Int64(bitPattern: random.next()) >> Int(random.next() % 60))
            case 1, 2: return .string(text())
            case 3: return .uuid(UUID())
            case 4: return .double(Double(Int64(random.next() % 10_000)) / 8)
            case 5: return .array((0..<Int(random.next() % 4)).map { _ in value(depth + 1) })
            case 6: return .object(Dictionary((0..<Int(random.next() % 4)).map { _ in (text(), value(depth + 1)) }, uniquingKeysWith: { a, _ in a }))
            default: return .datetime(SurrealDateTime(seconds: Int64(random.next() % 4_000_000_000), nanoseconds: UInt32(random.next() % 1_000_000_000)))
            }
        }
        for _ in 0..<500 {
            let id = RecordID(table: "repo", id: value(0))
            let text = id.plainDescription
            #expect(RecordID(parsing: text) == id, "\(text) did not read back as \(id.id)")
        }
    }
}

extension RecordIDTests {
    /// Ids written by hand (a collector's JSON, an older version) with text no form writes are
    /// string keys, as before: never a key that carries the table again.
    @Test func otherTextIsAStringKey() {
        #expect(RecordID(parsing: "repo:owner/name") == RecordID(table: "repo", id: .string("owner/name")))
        #expect(RecordID(parsing: "repo:a b") == RecordID(table: "repo", id: .string("a b")))
        #expect(RecordID(parsing: "repo:[1, 2") == RecordID(table: "repo", id: .string("[1, 2")))
        #expect(RecordID(parsing: "repo:") == nil)
        #expect(RecordID(parsing: "no-table") == nil)
    }
}
