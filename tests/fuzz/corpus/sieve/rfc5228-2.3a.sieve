if size :over 100k { # this is a comment
    discard;
}
