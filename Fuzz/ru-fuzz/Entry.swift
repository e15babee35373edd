// Two ways in. Built with -D FUZZING and -sanitize=fuzzer (make fuzz), main hands over to
// libFuzzer's driver, which calls LLVMFuzzerTestOneInput with the harness named by
// $RU_FUZZ_HARNESS. (main stays ours because SwiftPM links an executable's entry point under
// its own name, ru_fuzz_main, and aliases main to it; libFuzzer's own main is never linked.)
// In a plain
// build, main replays files (a corpus, crash inputs) through a harness:
//   ru-fuzz --list
//   ru-fuzz [-v] HARNESS FILE|FOLDER...   (-v: what each input gave, "ok" or the error)
#if canImport(Glibc)
import Glibc
#endif

#if FUZZING
nonisolated(unsafe) var fuzzHarness: Harness?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    let name = getenv("RU_FUZZ_HARNESS").map { String(cString: $0) } ?? ""
    guard let harness = Harness.named(name) else {
        fputs("ru-fuzz: set RU_FUZZ_HARNESS to one of: \(Harness.all.map(\.name).joined(separator: ", "))\n", stderr)
        exit(2)
    }
    fuzzHarness = harness
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzHarness!.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

typealias FuzzTarget = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

/// libFuzzer's entry for programs with their own main (compiler-rt's FuzzerInterface.h).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: FuzzTarget) -> Int32

@main
enum FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzerTestOneInput))
    }
}
#else
@main
enum Replay {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let verbose = arguments.first == "-v"
        if verbose { arguments.removeFirst() }
        if arguments.first == "--list" {
            for h in Harness.all { print("\(h.name)\t\(h.summary)") }
            return
        }
        guard arguments.count >= 2, let harness = Harness.named(arguments[0]) else {
            fputs("usage: ru-fuzz [-v] HARNESS FILE|FOLDER...   (harnesses: \(Harness.all.map(\.name).joined(separator: ", ")))\n", stderr)
            exit(64)
        }
        var count = 0
        for path in arguments.dropFirst() {
            for file in inputFiles(path) {
                guard let data = readWhole(file) else {
                    fputs("ru-fuzz: \(file): \(String(cString: strerror(errno)))\n", stderr)
                    exit(2)
                }
                let error = harness.run(data)
                if verbose { print("\(file): \(error.map { "\($0)" } ?? "ok")") }
                count += 1
            }
        }
        print("\(harness.name): \(count) inputs replayed")
    }
}
#endif

/// The files of `path`: itself, or the regular files directly inside it, sorted.
public func inputFiles(_ path: String) -> [String] {
    var st = stat()
    guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) else { return [path] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name.hasPrefix(".") { continue }
        var fst = stat()
        if stat(path + "/" + name, &fst) == 0, (fst.st_mode & S_IFMT) == S_IFREG { names.append(name) }
    }
    return names.sorted().map { path + "/" + $0 }
}

/// The whole file, or nil with errno set.
public func readWhole(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 { return nil }
        if n == 0 { return out }
        out += buffer[0..<n]
    }
}
