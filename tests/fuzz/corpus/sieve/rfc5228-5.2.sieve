if allof (header :contains "From" "coyote", size :under 10K, true, not false) { keep; }
