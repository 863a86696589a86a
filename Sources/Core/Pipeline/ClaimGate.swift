/// Keeps this process's claims and its release of orphaned leases apart.
///
/// `releaseAll(owner:except:)` ends every lease of the owner except those in flight. A claim
/// that the store has committed but whose answer has not reached its worker yet is in no "in
/// flight" set, so a release running meanwhile would end a lease that a worker is about to
/// embed under (and another instance would claim the repo too). Claims run side by side; a
/// release waits until none runs, and claims wait while it runs.
actor ClaimGate {
    private var claims = 0
    private var releasing = false
    private var parked: [CheckedContinuation<Void, Never>] = []

    func claim<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        while releasing { await park() }
        claims += 1
        defer {
            claims -= 1
            wakeAll()
        }
        return try await body()
    }

    func release<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        while releasing || claims > 0 { await park() }
        releasing = true
        defer {
            releasing = false
            wakeAll()
        }
        return try await body()
    }

    private func park() async {
        await withCheckedContinuation { parked.append($0) }
    }

    private func wakeAll() {
        let woken = parked
        parked = []
        for continuation in woken { continuation.resume() }
    }
}
