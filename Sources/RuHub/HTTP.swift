import RuCore
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A response head (and, for small answers, its body).
struct HTTPResponse {
    var status: Int
    /// Header names in lower case.
    var headers: [String: String]
    var body: [UInt8] = []
    /// The URL that answered (after the redirects that were followed).
    var url: URL

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

/// Synchronous HTTP over Foundation's URLSession (libcurl on Linux), with the controls a hub
/// download needs: redirects followed always or only within one origin (the hub's HEAD stops at
/// the CDN redirect, whose headers carry the file's metadata), and bodies streamed to a sink.
enum HTTP {
    enum Redirects { case follow, sameOrigin }

    /// Network failures (no answer at all), told apart from HTTP errors.
    struct NetworkError: Error, CustomStringConvertible {
        var message: String
        /// The body was cut off (connection lost): worth resuming.
        var interrupted: Bool
        var description: String { message }
    }

    /// Sends a request. `onHead` sees the response head and says whether to stream the body to
    /// `onBody` (true) or collect it into the response (false: error pages, API answers).
    /// Errors thrown by the sinks stop the transfer and come back out of `request`.
    static func request(_ url: URL, method: String = "GET", headers: [String: String] = [:],
                        redirects: Redirects = .follow, timeout: TimeInterval = 60,
                        onHead: ((HTTPResponse) throws -> Bool)? = nil,
                        onBody: ((UnsafeRawBufferPointer) throws -> Void)? = nil) throws -> HTTPResponse {
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.cachePolicy = .reloadIgnoringLocalCacheData
        request.timeoutInterval = timeout
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }

        let transfer = Transfer(origin: origin(url), redirects: redirects, onHead: onHead, onBody: onBody)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.httpCookieStorage = nil
        configuration.timeoutIntervalForRequest = timeout
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: transfer, delegateQueue: queue)
        let task = session.dataTask(with: request)
        task.resume()
        transfer.done.wait()
        session.finishTasksAndInvalidate()

        if let error = transfer.sinkError { throw error }
        if let error = transfer.failure {
            let interrupted = transfer.response != nil
            var message = describe(error, url: url)
            if interrupted, (error as? URLError)?.code != .networkConnectionLost {
                message = "the connection to \(url.host ?? "the server") broke off (\(error.localizedDescription))"
            }
            throw NetworkError(message: message, interrupted: interrupted)
        }
        guard let response = transfer.response else {
            throw NetworkError(message: "\(url.absoluteString): no response", interrupted: false)
        }
        return response
    }

    /// (scheme, host, port) with the scheme's default port, as huggingface_hub compares origins.
    static func origin(_ url: URL?) -> String {
        guard let url else { return "" }
        let scheme = (url.scheme ?? "").lowercased()
        let port = url.port ?? (scheme == "https" ? 443 : scheme == "http" ? 80 : 0)
        return "\(scheme)://\((url.host ?? "").lowercased()):\(port)"
    }

    /// A failure in words that name the cause: DNS, refused connection, timeout, lost connection.
    static func describe(_ error: Error, url: URL) -> String {
        let host = url.host ?? url.absoluteString
        guard let e = error as? URLError else { return "\(url.absoluteString): \(error.localizedDescription)" }
        switch e.code {
        case .cannotFindHost, .dnsLookupFailed:
            return "cannot resolve host \(host) (DNS lookup failed): check the network connection, a proxy, or HF_ENDPOINT"
        case .cannotConnectToHost:
            return "cannot connect to \(host)\(url.port.map { ":\($0)" } ?? ""): connection refused; check the network connection or HF_ENDPOINT"
        case .notConnectedToInternet:
            return "no network connection (reaching \(host))"
        case .timedOut:
            return "timed out waiting for \(host)"
        case .networkConnectionLost:
            return "the connection to \(host) was lost"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate,
             .serverCertificateNotYetValid, .serverCertificateHasUnknownRoot, .clientCertificateRejected:
            return "TLS connection to \(host) failed (\(e.localizedDescription)): check the system certificates or proxy"
        case .httpTooManyRedirects:
            return "too many redirects from \(url.absoluteString)"
        default:
            return "\(host): \(e.localizedDescription) (URLError \(e.code.rawValue))"
        }
    }

    private final class Transfer: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let origin: String
        let redirects: Redirects
        let onHead: ((HTTPResponse) throws -> Bool)?
        let onBody: ((UnsafeRawBufferPointer) throws -> Void)?
        var response: HTTPResponse?
        var streaming = false
        var failure: Error?
        var sinkError: Error?
        let done = DispatchSemaphore(value: 0)

        init(origin: String, redirects: Redirects, onHead: ((HTTPResponse) throws -> Bool)?,
             onBody: ((UnsafeRawBufferPointer) throws -> Void)?) {
            self.origin = origin
            self.redirects = redirects
            self.onHead = onHead
            self.onBody = onBody
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            if HTTP.origin(request.url) == origin {
                completionHandler(request)
            } else if redirects == .follow {
                // Off to another host (a CDN): the hub's token stays behind.
                var next = request
                next.setValue(nil, forHTTPHeaderField: "Authorization")
                completionHandler(next)
            } else {
                completionHandler(nil)   // the redirect response itself becomes the answer
            }
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            guard let http = response as? HTTPURLResponse else {
                completionHandler(.cancel)
                return
            }
            var headers: [String: String] = [:]
            for (name, value) in http.allHeaderFields {
                headers[String(describing: name).lowercased()] = String(describing: value)
            }
            let head = HTTPResponse(status: http.statusCode, headers: headers, url: http.url ?? dataTask.originalRequest!.url!)
            self.response = head
            do {
                streaming = try onHead?(head) ?? false
            } catch {
                sinkError = error
                completionHandler(.cancel)
                return
            }
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard sinkError == nil else { return }
            if streaming, let onBody {
                do {
                    try data.withUnsafeBytes { try onBody($0) }
                } catch {
                    sinkError = error
                    dataTask.cancel()
                }
            } else if let count = response?.body.count, count < 1 << 20 {
                response?.body.append(contentsOf: data)
            }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if sinkError == nil { failure = error }
            done.signal()
        }
    }
}
