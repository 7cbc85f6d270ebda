import Foundation
import MonitorController
import NIOHTTP1

/// The JSON of Prometheus' `/api/v1/query`, read down to one finite value:
/// `{"status":"success","data":{"resultType":"vector","result":[{"metric":{…},"value":[t,"v"]}]}}`,
/// or `"resultType":"scalar","result":[t,"v"]`. An empty vector is no value (nil).
enum PrometheusAnswer {
    static func parse(status: HTTPResponseStatus, body: Data, host: String) throws -> (value: Double, time: Date)? {
        let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
        let object = json as? [String: Any]
        // Prometheus answers its own errors (a bad query: 400, a timeout: 503) with a JSON body; say what it said.
        if let object, object["status"] as? String == "error" {
            let kind = (object["errorType"] as? String).map { "\(capped($0, 40)): " } ?? ""
            let words = (object["error"] as? String).map { capped($0, 200) } ?? "no reason given"
            throw MetricSourceError("Prometheus at \(host) refused the query (HTTP \(status.code)): \(kind)\(words)")
        }
        guard (200..<300).contains(status.code) else {
            throw MetricSourceError("Prometheus at \(host) answered HTTP \(status.code) \(status.reasonPhrase)"
                                    + (json == nil ? "" : " with no error in its answer"))
        }
        guard let object else {
            throw MetricSourceError("Prometheus at \(host) answered something that is not JSON; is the URL a Prometheus API?")
        }
        guard object["status"] as? String == "success", let data = object["data"] as? [String: Any],
              let resultType = data["resultType"] as? String else {
            throw shape(host, "no status \"success\" with data.resultType")
        }
        switch resultType {
        case "vector":
            guard let series = data["result"] as? [Any] else { throw shape(host, "a vector without a result list") }
            if series.isEmpty { return nil }
            guard series.count == 1 else {
                throw MetricSourceError("the query returned \(series.count) series from Prometheus at \(host); "
                                        + "make it return one, e.g. with sum() or avg()")
            }
            guard let sample = (series[0] as? [String: Any])?["value"] else { throw shape(host, "a series without a value") }
            return try point(sample, host: host)
        case "scalar":
            guard let sample = data["result"] else { throw shape(host, "a scalar without a result") }
            return try point(sample, host: host)
        default:
            throw MetricSourceError("the query returned a \(capped(resultType, 20)) from Prometheus at \(host), not one number; "
                                    + "use an instant vector or scalar expression (a range selector such as [5m] needs a function, e.g. avg_over_time)")
        }
    }

    /// `[<unix seconds>, "<number>"]`: the number must be finite.
    private static func point(_ sample: Any, host: String) throws -> (value: Double, time: Date) {
        guard let pair = sample as? [Any], pair.count == 2,
              let seconds = (pair[0] as? Double) ?? (pair[0] as? Int).map(Double.init) ?? (pair[0] as? NSNumber)?.doubleValue,
              let text = pair[1] as? String else {
            throw shape(host, "a value that is not [time, \"number\"]")
        }
        guard let value = Double(text) else {
            throw shape(host, "the value \"\(capped(text, 40))\", which is not a number")
        }
        guard value.isFinite else {
            throw MetricSourceError("the query's value from Prometheus at \(host) is \(text), not a finite number "
                                    + "(a division by zero over an empty range?); guard it, e.g. with `> 0` or clamp_max")
        }
        return (value, Date(timeIntervalSince1970: seconds))
    }

    private static func shape(_ host: String, _ what: String) -> MetricSourceError {
        MetricSourceError("Prometheus at \(host) answered JSON of the wrong shape (\(what)); is the URL a Prometheus API?")
    }
}
