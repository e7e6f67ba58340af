"""The offline dev stack and test harness: never packaged for Lambda (it lives outside chalicelib/)."""
