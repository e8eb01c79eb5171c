"""The live web page: plain HTML, CSS and JavaScript, and its route."""
