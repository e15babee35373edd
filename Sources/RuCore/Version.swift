public enum RuEmbedVersion {
    public static let string = "0.1.0"
}
