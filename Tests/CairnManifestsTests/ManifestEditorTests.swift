import CairnManifests
import Testing

/// A Model and a deployment in one file, with comments and both mapping styles, as people write them.
private let models = """
    # The churn model: who holds which stage.
    apiVersion: cairn/v1
    kind: Model
    metadata:
      name: churn   # keep in step with training.yaml
    spec:
      stages: [staging, production]
      assignments:
        staging: 3      # trying the new features
        production: 3   # promoted on Monday
    ---
    apiVersion: cairn/v1
    kind: Model
    metadata: {name: fraud}
    spec: {stages: [production], assignments: {production: 7, staging: '7'}}

    """

private let churn = ObjectRef(.model, "churn")
private let fraud = ObjectRef(.model, "fraud")

private func edit(_ text: String = models, _ object: ObjectRef = churn, _ field: [String] = ["spec", "assignments", "production"],
                  expected: String = "3", value: String = "2") throws(ManifestEditError) -> String {
    try ManifestEditor.replace(in: text, file: "models.yaml", object: object, field: field, expected: expected, with: value)
}

/// The lines that differ between two texts of the same number of lines.
private func changedLines(_ before: String, _ after: String) -> [String] {
    let old = before.split(separator: "\n", omittingEmptySubsequences: false)
    let new = after.split(separator: "\n", omittingEmptySubsequences: false)
    guard old.count == new.count else { return ["line count changed"] }
    return zip(old, new).filter { $0 != $1 }.map { String($0.1) }
}

@Suite struct ManifestEditorTests {
    @Test func aBlockMappingValueChangesAndCommentsStay() throws {
        let edited = try edit()
        #expect(changedLines(models, edited) == ["    production: 2   # promoted on Monday"])
    }

    @Test func theRightDocumentAndKeyAreEdited() throws {
        // The same text, 3, stands at staging too: only production changes.
        let edited = try edit()
        #expect(edited.contains("staging: 3      # trying the new features"))
        // In a flow mapping of the second document.
        let flow = try edit(models, fraud, expected: "7", value: "6")
        #expect(changedLines(models, flow) == ["spec: {stages: [production], assignments: {production: 6, staging: '7'}}"])
    }

    @Test func aQuotedValueKeepsItsQuotes() throws {
        let edited = try edit(models, fraud, ["spec", "assignments", "staging"], expected: "7", value: "5")
        #expect(changedLines(models, edited) == ["spec: {stages: [production], assignments: {production: 7, staging: '5'}}"])
    }

    @Test func aValueOfADifferentLengthAndCRLFLineEndings() throws {
        let windows = models.replacingOccurrences(of: "\n", with: "\r\n")
        let edited = try edit(windows, churn, expected: "3", value: "12")
        #expect(edited == windows.replacingOccurrences(of: "production: 3   #", with: "production: 12   #"))
    }

    @Test func aValueAfterNonASCIITextIsFoundByCharacters() throws {
        let text = "apiVersion: cairn/v1\nkind: Model\nmetadata: {name: churn}\nspec: {stages: [prød], assignments: {prød: 3}}\n"
        let edited = try edit(text, churn, ["spec", "assignments", "prød"], expected: "3", value: "2")
        #expect(edited == text.replacingOccurrences(of: "{prød: 3}", with: "{prød: 2}"))
    }

    @Test(arguments: [
        (["spec", "assignments", "canary"], "3", ManifestEditError.Code.fieldNotFound, "models.yaml:9:5: Model/churn has no spec.assignments.canary"),
        (["spec", "assignments", "production"], "4", .unexpectedValue,
         "models.yaml:10:17: Model/churn spec.assignments.production is '3', not '4' as the proposal expected"),
        (["spec", "assignments"], "3", .unsupported, "Model/churn spec.assignments is a mapping, not a single value"),
    ])
    func anEditThatDoesNotFitIsRefusedWithWhere(field: [String], expected: String, code: ManifestEditError.Code, message: String) throws {
        let error = try #require(throws: ManifestEditError.self) { try edit(models, churn, field, expected: expected) }
        #expect(error.code == code)
        #expect(error.description.contains(message), "\(error)")
    }

    @Test func anObjectTheFileDoesNotHoldIsRefused() throws {
        let error = try #require(throws: ManifestEditError.self) { try edit(models, ObjectRef(.model, "other")) }
        #expect(error.code == .objectNotFound && error.description == "models.yaml:1:1: the file has no document of Model/other")
    }

    @Test func aValueWrittenInAWayCairnDoesNotRewriteIsRefused() throws {
        let tagged = models.replacingOccurrences(of: "production: 3 ", with: "production: !!int 3 ")
        let error = try #require(throws: ManifestEditError.self) { try edit(tagged) }
        #expect(error.code == .unsupported && error.description.contains("written as '!!int 3"), "\(error)")
        // A new value that would read as another type (here a boolean) is refused too.
        let boolean = try #require(throws: ManifestEditError.self) { try edit(models, value: "yes") }
        #expect(boolean.code == .unsupported && boolean.description.contains("would not read back"), "\(boolean)")
    }

    @Test func brokenYAMLIsRefused() throws {
        let error = try #require(throws: ManifestEditError.self) { try edit("kind: Model\nmetadata: {name: churn\n") }
        #expect(error.code == .unreadable, "\(error)")
    }
}
