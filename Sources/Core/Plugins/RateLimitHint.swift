/// What a provider's answer said about its rate limits (`x-ratelimit-*` headers and the like).
/// Every field is optional: providers send different subsets.
public struct RateLimitHint: Sendable, Hashable {
    public var provider: String
    public var requestsLimit: Int?
    public var requestsRemaining: Int?
    public var requestsReset: Duration?
    public var tokensLimit: Int?
    public var tokensRemaining: Int?
    public var tokensReset: Duration?

    public init(provider: String) {
        self.provider = provider
    }

    public var isEmpty: Bool {
        requestsLimit == nil && requestsRemaining == nil && requestsReset == nil
            && tokensLimit == nil && tokensRemaining == nil && tokensReset == nil
    }
}
