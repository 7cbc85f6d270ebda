enum PCairnManifestsTests {}
