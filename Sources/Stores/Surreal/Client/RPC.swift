/// The RPC envelope: `{id, method, params}` out, `{id, result}` or `{id, error}` back.
enum RPC {
    static func request(id: Int64, method: String, params: [SurrealValue]) -> [UInt8] {
        CBOR.encode(.object(["id": .int(id), "method": .string(method), "params": .array(params)]))
    }

    /// The id of a reply, if it has one (replies to requests; WebSocket live notifications have none).
    static func id(of reply: SurrealValue) -> Int64? {
        reply["id"]?.int
    }

    /// The result of a reply, or its error thrown.
    static func result(of reply: SurrealValue) throws(SurrealError) -> SurrealValue {
        if let error = reply["error"], !error.isAbsent {
            let message = error["message"]?.string ?? error.string ?? "unknown error"
            throw SurrealError.fromServer(.rpc, message, code: error["code"]?.int)
        }
        guard let result = reply["result"] else {
            throw SurrealError(.protocolViolation, "reply has neither result nor error")
        }
        return result
    }

    /// The results of a `query` call, one per statement; the first failed statement is thrown
    /// with the server's message. Works with 1.x, 2.x and 3.x replies (3.x adds `type`).
    static func statementResults(_ result: SurrealValue) throws(SurrealError) -> [SurrealValue] {
        guard case .array(let statements) = result else {
            throw SurrealError(.protocolViolation, "query reply is not a list of statement results")
        }
        var results: [SurrealValue] = []
        results.reserveCapacity(statements.count)
        var failures: [String] = []
        for (index, statement) in statements.enumerated() {
            let status = statement["status"]?.string ?? "OK"
            let value = statement["result"] ?? .none
            if status != "OK" { failures.append("statement \(index + 1): " + (value.string ?? "failed")) }
            results.append(value)
        }
        if !failures.isEmpty {
            // In a transaction every statement reports the failure; the cause is the one that
            // does not just say so.
            let cause = failures.first { !$0.contains("failed transaction") } ?? failures[0]
            throw SurrealError.fromServer(.statement, cause)
        }
        return results
    }
}
