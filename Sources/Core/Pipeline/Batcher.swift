/// Splits texts into provider calls by count and by a token budget, keeping their order.
public enum Batcher {
    /// Ranges of `costs` indices: each has at most `maxCount` items and, unless a single item is
    /// over the budget on its own, at most `maxTokens` summed cost.
    public static func split(costs: [Int], maxCount: Int, maxTokens: Int?) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        var tokens = 0
        for (index, cost) in costs.enumerated() {
            let full = index - start >= maxCount
            let overBudget = maxTokens.map { tokens + cost > $0 } ?? false
            if index > start, full || overBudget {
                ranges.append(start..<index)
                start = index
                tokens = 0
            }
            tokens += cost
        }
        if start < costs.count { ranges.append(start..<costs.count) }
        return ranges
    }
}
