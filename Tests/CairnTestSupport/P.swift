enum PCairnTestSupport {}
