enum PCairnCLITests {}
