require "encoded-character";
if header :contains "Subject" ["$${hex:24 24}", "${unicode:40}",
    "${ unicode:40}", "${Unicode:40}", "${Unicode:Cool}", "${hex:40",
    "${hex:4${hex:30}}"] { discard; }
