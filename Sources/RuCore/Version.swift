public enum RuEmbedVersion {
    public static let string = "0.2.0"
}
