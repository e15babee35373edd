import RuCore
#if canImport(Glibc)
import Glibc
#endif

/// Turns what the user gave as `--model` into a folder on disk.
///
/// Every tool that needs a model goes through `resolve`, so how models are found lives in one
/// place. The order (docs/MODELS.md):
/// 1. an existing folder;
/// 2. a hub id `org/name[@revision]` whose snapshot is complete in the Hugging Face cache
///    (HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
///    ~/.cache/huggingface/hub), shared with Python's huggingface_hub;
/// 3. a download from the hub (HF_ENDPOINT) into that cache, unless HF_HUB_OFFLINE is on.
public enum ModelLocator {
    /// The model the tools use when neither `--model` nor RU_EMBED_MODEL names one.
    public static let defaultModel = "deepvk/USER-base"

    /// How a download reports itself.
    public struct Options: Sendable {
        /// Notes where the model was found and, with `.lines`, one line per downloaded file.
        public var verbose: Bool
        /// How downloads report themselves; nil: lines with `verbose`, else nothing.
        public var reporting: DownloadReporting?
        /// Where notes and progress go (the library writes nothing itself).
        public var reporter: Reporter
        /// The environment's hub settings; nil reads them (HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE).
        public var settings: HubSettings?

        /// Options with the defaults of a quiet library call: no notes, the settings read from the environment.
        public init(verbose: Bool = false, reporting: DownloadReporting? = nil, settings: HubSettings? = nil,
                    reporter: Reporter = .silent) {
            self.reporter = reporter
            self.verbose = verbose
            self.reporting = reporting
            self.settings = settings
        }
    }

    /// The folder holding the model named by `spec` (a folder or a hub id), downloading it when needed.
    public static func resolve(_ spec: String, options: Options = Options()) throws -> String {
        if FileSystem.isDirectory(spec) { return spec }
        if access(spec, F_OK) == 0 {
            throw RuEmbedError("model '\(spec)': not a folder (a model is a folder with config.json and tokenizer.json, or a hub id org/name)")
        }
        guard !spec.hasPrefix("/"), !spec.hasPrefix("."), !spec.hasPrefix("~"), let id = HubModelID(spec) else {
            throw RuEmbedError("model '\(spec)': no such folder, and not a hub id (org/name or org/name@revision)")
        }
        let settings = options.settings ?? HubSettings.fromEnvironment()
        let cache = HubCache(root: settings.cacheDirectory)
        if let folder = cache.completeSnapshot(id) {
            try cache.checkSnapshot(id, folder: folder)
            if options.verbose { options.reporter.note("model \(id): \(folder) (cache)") }
            return folder
        }
        if settings.offline {
            var detail = "is not in the Hugging Face cache (\(settings.cacheDirectory))"
            if let commit = cache.cachedCommit(id) {
                let missing = ModelFiles.missing(in: cache.snapshot(id, commit: commit))
                if !missing.isEmpty { detail = "is incomplete in the Hugging Face cache (missing \(missing.joined(separator: ", ")))" }
            }
            let revision = id.revision == "main" ? "" : " --revision \(id.revision)"
            throw RuEmbedError("model '\(id)' \(detail) and offline mode is on (HF_HUB_OFFLINE): fetch it with `huggingface-cli download \(id.repo)\(revision)` or run once without HF_HUB_OFFLINE")
        }
        let reporting = options.reporting ?? (options.verbose ? .lines : .quiet)
        return try HubClient(settings: settings, reporting: reporting, verbose: options.verbose, reporter: options.reporter).download(id)
    }
}
