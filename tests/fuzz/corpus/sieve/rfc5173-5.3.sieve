require "body";
# Note: text is the default
if body :text :contains "project schedule" { keep; }
