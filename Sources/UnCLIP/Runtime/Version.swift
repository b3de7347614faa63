/// The engine's version (`--version`, image metadata).
public enum UnCLIPVersion {
    public static let string = "0.6.0"
}
