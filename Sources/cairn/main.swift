import CairnCLI

await Cairn.runMain()
