@testable import CairnManifests
import Testing

@Suite struct ValueTests {
    @Test(arguments: [("500ms", 500), ("30s", 30_000), ("10m", 600_000), ("1h30m", 5_400_000), ("2d", 172_800_000)] as [(String, Int64)])
    func durationsParse(_ text: String, _ milliseconds: Int64) throws {
        #expect(try ManifestDuration(parsing: text).milliseconds == milliseconds)
    }

    @Test(arguments: ["", "10", "m", "10 minutes", "1m1h", "5x", "-1s", "99999999999999999d"])
    func badDurationsAreRefused(_ text: String) {
        #expect(throws: ValueError.self) { try ManifestDuration(parsing: text) }
    }

    @Test func cronFieldsExpand() throws {
        let cron = try CronSchedule(parsing: "*/15 9-17 * jan,jul mon-fri")
        #expect(cron.minutes == [0, 15, 30, 45])
        #expect(cron.hours == Set(9...17))
        #expect(cron.months == [1, 7])
        #expect(cron.daysOfWeek == Set(1...5))
        #expect(try CronSchedule(parsing: "@daily").hours == [0])
        #expect(try CronSchedule(parsing: "0 0 * * 7").daysOfWeek == [0])
    }

    @Test(arguments: ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
                      "5-1 * * * *", "*/0 * * * *", "@fortnightly", "a b c d e", "1,,2 * * * *"])
    func badCronIsRefused(_ text: String) {
        #expect(throws: ValueError.self) { try CronSchedule(parsing: text) }
    }

    @Test(arguments: [("a/b.csv", "a/b.csv"), ("./a//b", "a/b"), ("a/../b", "b"), ("data/", "data")])
    func pathsNormalise(_ raw: String, _ normal: String) throws {
        #expect(try RepositoryPath(raw).value == normal)
    }

    @Test(arguments: ["", "/etc/passwd", "~/x", "..", "../x", "a/../../x", ".", ".git/config", "a\\b"])
    func pathsThatLeaveTheRepositoryAreRefused(_ raw: String) {
        #expect(throws: ValueError.self) { try RepositoryPath(raw) }
    }

    @Test func nearestNameFindsTyposOnly() {
        #expect(nearest(to: "tiemout", in: ["timeout", "retries"]) == "timeout")
        #expect(nearest(to: "xyz", in: ["timeout", "retries"]) == nil)
    }
}
