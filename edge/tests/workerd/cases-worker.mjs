// Runs in workerd: replays the shared decision cases POSTed to it and answers the mismatches.
import { Authorizer, initBridle } from "../../bridle.mjs";
import wasm from "../../pkg/bridle_web_bg.wasm";
import { replayCases } from "../case-runner.mjs";

initBridle(wasm);

export default {
  async fetch(request) {
    return Response.json(await replayCases(await request.json(), Authorizer));
  },
};
