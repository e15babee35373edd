#if canImport(Glibc)
import Glibc
#endif

/// Turns what the user gave as `--model` into a folder on disk.
///
/// Every tool that needs a model goes through `resolve`, so how models are found (a folder
/// today; hub ids and the shared Hugging Face cache with issue 5) lives in one place.
public enum ModelLocator {
    /// The model used when `--model` is not given: `RU_EMBED_MODEL`, else USER-base.
    public static var defaultModel: String {
        if let value = getenv("RU_EMBED_MODEL"), let s = String(validatingCString: value), !s.isEmpty { return s }
        return "deepvk/USER-base"
    }

    /// The folder holding the model named by `spec` (a folder path, for now).
    public static func resolve(_ spec: String?) throws -> String {
        let spec = spec ?? defaultModel
        var info = stat()
        if stat(spec, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { return spec }
        throw ToolError("model '\(spec)': no such folder (hub ids and the Hugging Face cache are not supported yet; pass --model DIR)")
    }
}
