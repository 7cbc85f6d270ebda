enum PCairnGitTests {}
