"""Code the tests share (no tests here): span rows, fuzz strategies, cost cases, provider shapes, chdb."""
