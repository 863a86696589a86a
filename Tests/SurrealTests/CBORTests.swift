import Foundation
import SurrealClient
import Testing

@Suite struct CBORTests {
    static let samples: [SurrealValue] = [
        .none, .null, true, false, 0, 23, 24, 255, 256, 65_535, 65_536, 4_294_967_296, -1, -24, -25, -1_000_000, .int(.max), .int(.min),
        1.5, -0.0, .double(.infinity), "", "hello", "ünïcödé 日本 👍", .bytes([0, 1, 255]),
        [1, "two", [3.0]], ["a": 1, "nested": ["b": .null]],
        .table("repo"),
        .recordID(RecordID(table: "repo", id: "abc")), .recordID(RecordID(table: "repo", id: 42)),
        .recordID(RecordID(table: "repo", id: ["x", 1])), .recordID(RecordID(table: "repo", id: ["k": "v"])),
        .uuid(UUID(uuidString: "1f0e2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7")!), .decimal("12345.678901234567891"),
        .datetime(SurrealDateTime(seconds: 1_700_000_000, nanoseconds: 123_456_789)),
        .duration(SurrealDuration(seconds: 90, nanoseconds: 5)), .tagged(49, [1, 5]),
    ]

    @Test(arguments: samples)
    func roundTrips(_ value: SurrealValue) throws {
        #expect(try CBOR.decode(CBOR.encode(value)) == value)
    }

    @Test func floatVectorsTravelAsFloat32() throws {
        let vector = (0..<384).map { Float($0) / 384 - 0.5 }
        let bytes = CBOR.encode(.floats(vector))
        #expect(bytes.count == 3 + 384 * 5)
        #expect(try CBOR.decode(bytes).floatArray == vector)
    }

    @Test func decodesKnownEncodings() throws {
        // RFC 8949 appendix A examples, and the string forms of SurrealDB's tags.
        #expect(try CBOR.decode([0x19, 0x03, 0xe8]) == 1000)
        #expect(try CBOR.decode([0xf9, 0x3c, 0x00]) == 1.0)
        #expect(try CBOR.decode([0xfa, 0x47, 0xc3, 0x50, 0x00]) == 100_000.0)
        #expect(try CBOR.decode([0x9f, 0x01, 0x02, 0xff]) == [1, 2])
        #expect(try CBOR.decode([0x7f, 0x62, 0x61, 0x62, 0x61, 0x63, 0xff]) == "abc")
        #expect(try CBOR.decode([0xbf, 0x61, 0x61, 0x01, 0xff]) == ["a": 1])
        #expect(try CBOR.decode(tagged(8, text: "repo:abc")) == .recordID(RecordID(table: "repo", id: "abc")))
        #expect(try CBOR.decode(tagged(9, text: "1f0e2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7")) == .uuid(UUID(uuidString: "1f0e2a3b-4c5d-6e7f-8091-a2b3c4d5e6f7")!))
        #expect(try CBOR.decode(tagged(0, text: "2023-11-14T22:13:20.000000123Z")) == .datetime(SurrealDateTime(seconds: 1_700_000_000, nanoseconds: 123)))
    }

    private func tagged(_ tag: UInt8, text: String) -> [UInt8] {
        let count = text.utf8.count
        return [0xc0 | tag] + (count < 24 ? [0x60 | UInt8(count)] : [0x78, UInt8(count)]) + Array(text.utf8)
    }

    @Test func rejectsMalformedInput() {
        for bytes: [UInt8] in [[], [0x18], [0x62, 0x61], [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], [0xa1, 0x01, 0x02], [0x01, 0x02],
                               [0x62, 0xff, 0xfe], [0x1c], Array(repeating: 0x81, count: 2000) + [0x01]] {
            #expect(throws: CBORError.self, "\(bytes.prefix(8))") { try CBOR.decode(bytes) }
        }
    }

    @Test func urlsWithAndWithoutRPCPath() throws {
        #expect(try SurrealConfiguration(url: "ws://host:8000", namespace: "n", database: "d").endpoint == "ws://host:8000/rpc")
        #expect(try SurrealConfiguration(url: "ws://host:8000/rpc", namespace: "n", database: "d").endpoint == "ws://host:8000/rpc")
        #expect(try SurrealConfiguration(url: "https://db.example/base/", namespace: "n", database: "d").endpoint == "https://db.example/base/rpc")
        #expect(try SurrealConfiguration(url: "http://u:secret@h:1", namespace: "n", database: "d").endpoint == "http://h:1/rpc")
        #expect(throws: SurrealError.self) { try SurrealConfiguration(url: "tcp://h:1", namespace: "n", database: "d") }
        #expect(throws: SurrealError.self) { try SurrealConfiguration(url: "localhost:8000", namespace: "n", database: "d") }
    }
}
