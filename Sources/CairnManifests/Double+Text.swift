extension Double {
    /// The number as Cairn shows it in rules, metrics and registry files: whole numbers
    /// without a fraction (`5`, not `5.0`), others in their shortest form that reads back as
    /// the same double (`0.9338`).
    public var shortText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : "\(self)"
    }
}
